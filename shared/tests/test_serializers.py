"""shared.serializers.ModelSerializer: fields built once per class, the answers unchanged."""

from __future__ import annotations

import uuid

from rest_framework import serializers

from shared import serializers as shared_serializers
from shared.messaging.models import ProcessedEvent


class InboxRowSerializer(shared_serializers.ModelSerializer):
    class Meta:
        model = ProcessedEvent
        fields = ["consumer", "event_id", "event_type"]


def test_fields_are_built_once_per_class_and_each_instance_has_its_own(monkeypatch):
    builds: list[type] = []
    build = serializers.ModelSerializer.get_fields
    monkeypatch.setattr(
        serializers.ModelSerializer, "get_fields", lambda self: builds.append(type(self)) or build(self)
    )
    monkeypatch.setattr(shared_serializers, "_built", {})
    row = ProcessedEvent(consumer="c", event_id=uuid.UUID(int=7), event_type="T")

    first, second = InboxRowSerializer(row), InboxRowSerializer(row)
    expected = {"consumer": "c", "event_id": str(uuid.UUID(int=7)), "event_type": "T"}
    assert first.data == expected and second.data == expected
    assert builds == [InboxRowSerializer]
    assert first.fields["consumer"] is not second.fields["consumer"]
    assert first.fields["consumer"].parent is first and second.fields["consumer"].parent is second
