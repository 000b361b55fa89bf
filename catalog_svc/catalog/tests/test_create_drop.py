"""The operator's create_drop command: JSON on stdout, clear errors, nothing half-written."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Cloth
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def test_create_drop_prints_the_ids_and_registers_stock(inventory_calls, capsys):
    call_command(
        "create_drop",
        "--name",
        "Jacket",
        "--price",
        "59000",
        "--sizes",
        "S:100,M:200,L:200",
        "--starts-at",
        "2030-01-01T09:00:00+09:00",
        "--limit",
        "1",
        "--brand",
        "Acme",
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cloth = Cloth.objects.get(pk=out["cloth_id"])
    assert out["sale_starts_at"] == "2030-01-01T00:00:00+00:00"
    assert [(v["size"], v["stock"]) for v in out["variants"]] == [("S", 100), ("M", 200), ("L", 200)]
    assert cloth.purchase_limit == 1 and cloth.brand == "Acme"
    assert OutboxEvent.objects.filter(event_type="ClothCreated", aggregate_id=str(cloth.id)).count() == 1
    assert inventory_calls[0][3]["variants"][0] == {
        "variant_id": out["variants"][0]["variant_id"],
        "stock": 100,
        "size": "S",
    }
    assert inventory_calls[0][3]["name"] == "Jacket"  # for the inventory admin


def test_inventory_down_is_said_on_stderr_and_the_event_still_carries_it(inventory_calls, capsys):
    inventory_calls.down = True
    call_command("create_drop", "--name", "Cap", "--price", "1000", "--stock", "5")
    captured = capsys.readouterr()
    assert "inventory not reached" in captured.err
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["variants"][0]["size"] == "ONE"
    assert OutboxEvent.objects.filter(event_type="ClothCreated").count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--price", "abc", "--sizes", "S:1"],
        ["--price", "-5", "--sizes", "S:1"],
        ["--price", "10", "--sizes", "S:x"],
        ["--price", "10", "--sizes", "S:1,S:2"],
        ["--price", "10", "--sizes", "S:1", "--starts-at", "tomorrow"],
        ["--price", "10", "--sizes", "S:1", "--limit", "-1"],
        ["--price", "10.001", "--sizes", "S:1"],
    ],
)
def test_bad_arguments_fail_clearly_and_write_nothing(inventory_calls, args):
    with pytest.raises(CommandError):
        call_command("create_drop", "--name", "Bad", *args)
    assert not Cloth.objects.exists() and not OutboxEvent.objects.exists() and not inventory_calls
