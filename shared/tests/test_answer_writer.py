"""answer_writer: a serializer's answers written by one serializer per class (shared.serializers)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

from rest_framework import serializers

from shared.serializers import answer_writer


class _LineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    price = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=True)


class _BasketSerializer(serializers.Serializer):
    basket_id = serializers.IntegerField()
    lines = _LineSerializer(many=True, source="items")
    at = serializers.DateTimeField()
    made = 0

    def __init__(self, *args, **kwargs):
        type(self).made += 1
        super().__init__(*args, **kwargs)


def _basket(n: int) -> SimpleNamespace:
    return SimpleNamespace(
        basket_id=n,
        items=[SimpleNamespace(sku=f"s{n}-{i}", price=Decimal(n) + Decimal("0.5") * i) for i in range(n % 3)],
        at=dt.datetime(2026, 11, 26, 4, n % 60, tzinfo=dt.UTC),
    )


def test_it_writes_what_the_serializer_writes_with_one_serializer_for_every_answer():
    write = answer_writer(_BasketSerializer)
    baskets = [_basket(n) for n in range(1, 40)]
    expected = [_BasketSerializer(b).data for b in baskets]
    _BasketSerializer.made = 0
    assert [write(b) for b in baskets] == expected
    assert _BasketSerializer.made == 1


def test_answers_written_at_once_by_many_threads_are_each_their_own():
    write = answer_writer(_BasketSerializer)
    baskets = [_basket(n) for n in range(1, 400)]
    expected = [_BasketSerializer(b).data for b in baskets]
    _BasketSerializer.made = 0
    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(write, baskets))
    assert written == expected
    assert _BasketSerializer.made == 1
