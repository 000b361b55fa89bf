"""Serializers that build their fields once per class, not once per answer or request.

DRF's ModelSerializer looks its model's fields up and builds serializer fields from them
every time a serializer is made: in an order's answer that was most of the serializer's
cost. The built fields depend only on the class (and on settings read when they are
built), so the first instance keeps them and later instances take copies, which is what
a plain Serializer does with its declared fields anyway. :func:`answer_writer` goes further
for answers: one serializer per class and process writes them all; :func:`validator` does
the same for a request's input.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from django.test.signals import setting_changed
from rest_framework import serializers

_built: dict[type, dict[str, serializers.Field]] = {}


class ModelSerializer(serializers.ModelSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        fields = _built.get(cls)
        if fields is None:
            fields = _built[cls] = super().get_fields()
        return copy.deepcopy(fields)


def answer_writer(serializer_class: type[serializers.BaseSerializer]) -> Callable[[Any], dict]:
    """A function writing ``serializer_class(instance).data`` without a serializer per answer.

    Making a serializer builds and binds its fields (copies of the class's, nested
    serializers' included): an order's answer took 221-311 µs that way in the order
    service's shell. Writing an answer only reads those fields, so one serializer, made on
    first use in each process, writes every answer of its class (32-33 µs for an order). For answers only (no input, no
    ``save``), and only with serializers whose fields read no context (a request, say):
    the one serializer has none.
    """
    serializer = _OnePerProcess(serializer_class)

    def write(instance: Any) -> dict:
        return serializer().to_representation(instance)

    write.__name__ = f"write_{serializer_class.__name__}"
    return write


def validator(serializer_class: type[serializers.Serializer]) -> Callable[[Any], Any]:
    """A function returning ``serializer_class(data=data)``'s ``validated_data``, or raising
    the ``ValidationError`` of ``is_valid(raise_exception=True)``, without a serializer per request.

    Making a serializer copies and binds its fields, nested serializers' included; on the
    inventory's reservation that was most of the validation's cost. Validating only reads
    those fields, so one serializer per class and process, made on first use, validates
    every request's data; invalid data goes the usual way (a serializer of its own), so the
    error's shape is DRF's exactly. For input serializers whose fields, ``validate_*`` and
    ``validate`` read no context and keep no state. Fields built from settings are built
    again after a setting changes (tests).
    """
    serializer = _OnePerProcess(serializer_class)

    def validate(data: Any) -> Any:
        try:
            return serializer().run_validation(data)
        except serializers.ValidationError:
            fresh = serializer_class(data=data)
            fresh.is_valid(raise_exception=True)
            return fresh.validated_data  # valid after all: no state of the shared one is kept

    setting_changed.connect(serializer.forget, weak=False)
    validate.__name__ = f"validate_{serializer_class.__name__}"
    return validate


class _OnePerProcess:
    """``serializer_class()``, made (its fields built and bound) on the first call in each
    process, by one thread, and returned by every call after; ``forget`` drops it."""

    def __init__(self, serializer_class: type[serializers.BaseSerializer]):
        self.serializer_class = serializer_class
        self.made: list[serializers.BaseSerializer] = []
        self.lock = threading.Lock()

    def __call__(self) -> serializers.BaseSerializer:
        if not self.made:
            with self.lock:
                if not self.made:
                    serializer = self.serializer_class()
                    _ = serializer.fields  # built and bound here, once, not by the first requests at once
                    self.made.append(serializer)
        return self.made[0]

    def forget(self, **kwargs: Any) -> None:
        self.made.clear()
