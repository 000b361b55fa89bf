"""A ModelSerializer that builds its fields once per class, not once per answer.

DRF's ModelSerializer looks its model's fields up and builds serializer fields from them
every time a serializer is made: in an order's answer that was most of the serializer's
cost. The built fields depend only on the class (and on settings read when they are
built), so the first instance keeps them and later instances take copies, which is what
a plain Serializer does with its declared fields anyway.
"""

from __future__ import annotations

import copy

from rest_framework import serializers

_built: dict[type, dict[str, serializers.Field]] = {}


class ModelSerializer(serializers.ModelSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        fields = _built.get(cls)
        if fields is None:
            fields = _built[cls] = super().get_fields()
        return copy.deepcopy(fields)
