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


class _LineIn(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=5)


class _OrderIn(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, default="", allow_blank=True, trim_whitespace=True)
    lines = _LineIn(many=True, allow_empty=False)

    def get_fields(self):
        # a bound read from the settings when the fields are built, as the order's lines are
        from django.conf import settings

        return {**super().get_fields(), "tag": serializers.CharField(required=False, max_length=settings.TAG_LENGTH)}

    def validate_lines(self, lines):
        if len({line["variant_id"] for line in lines}) != len(lines):
            raise serializers.ValidationError("A variant twice.")
        return lines


def _by_is_valid(data):
    s = _OrderIn(data=data)
    s.is_valid(raise_exception=True)
    return s.validated_data


def _error(check, data):
    try:
        check(data)
    except serializers.ValidationError as exc:
        return exc.detail
    raise AssertionError("valid")


def test_a_validator_answers_as_is_valid_does_and_builds_the_fields_once(settings, monkeypatch):
    settings.TAG_LENGTH = 3
    check = shared_serializers.validator(_OrderIn)
    builds: list[bool] = []
    build = _OrderIn.get_fields
    monkeypatch.setattr(_OrderIn, "get_fields", lambda self: builds.append(True) or build(self))
    good = {"order_id": 4, "note": "  hi ", "lines": [{"variant_id": 1, "quantity": 2}]}
    assert (
        check(good)
        == _by_is_valid(good)
        == {
            "order_id": 4,
            "note": "hi",
            "lines": [{"variant_id": 1, "quantity": 2}],
        }
    )
    for _ in range(3):
        check(good)
    assert builds == [True, True]  # once by the validator, once by the is_valid above
    for bad in (
        {"order_id": 0, "lines": []},
        {"order_id": 4, "lines": [{"variant_id": 1, "quantity": 9}, {"variant_id": 1, "quantity": 1}]},
        {"order_id": 4, "lines": [{"variant_id": 1, "quantity": 1}, {"variant_id": 1, "quantity": 1}]},
        {"order_id": 4, "lines": [{"variant_id": 1, "quantity": 1}], "tag": "long"},
        [],
        None,
        "x",
    ):
        assert _error(check, bad) == _error(_by_is_valid, bad), bad


def test_a_validator_builds_its_fields_again_after_a_setting_changes(settings):
    settings.TAG_LENGTH = 3
    check = shared_serializers.validator(_OrderIn)
    data = {"order_id": 4, "lines": [{"variant_id": 1, "quantity": 1}], "tag": "long"}
    assert "tag" in _error(check, data)
    settings.TAG_LENGTH = 10
    assert check(data)["tag"] == "long"


def test_one_validator_serves_threads_at_once_each_with_its_own_answer(settings):
    import threading

    settings.TAG_LENGTH = 3
    check = shared_serializers.validator(_OrderIn)
    wrong: list[object] = []

    def run(n: int) -> None:
        for i in range(300):
            order_id = n * 1000 + i + 1
            got = check({"order_id": order_id, "lines": [{"variant_id": order_id, "quantity": 1}]})
            if got["order_id"] != order_id or got["lines"][0]["variant_id"] != order_id:
                wrong.append(got)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
