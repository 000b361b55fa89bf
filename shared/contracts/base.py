"""What every event contract is, and how a payload becomes one and back.

A contract is a frozen ``msgspec.Struct``: its fields are the payload's keys, in the order
they are sent; its class attributes say where it travels (``topic``), what it is about
(``aggregate_type``, and ``key``: the field whose value is the aggregate id and the Kafka
key) and which shape of it this is (``version``). This module imports nothing of Django, so
the load tests and the documentation generator read the same contracts as the services.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import msgspec


class ContractError(ValueError):
    """A payload that is not the contract it claims to be: unknown version, or does not fit."""


class Contract(msgspec.Struct, frozen=True, kw_only=True):
    topic: ClassVar[str]
    aggregate_type: ClassVar[str]
    key: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.key))


class Shape(msgspec.Struct, frozen=True, kw_only=True):
    """A part of a payload (a line, a variant): not an event of its own."""


C = TypeVar("C", bound=Contract)


def to_payload(contract: Contract) -> dict[str, Any]:
    """The JSON-ready payload: decimals as strings, times in ISO 8601 (``datetime.isoformat``)."""
    return _plain(msgspec.to_builtins(contract, builtin_types=(dt.datetime, Decimal)))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def from_payload(contract: type[C], payload: Any, *, version: int) -> C:
    """The payload as ``contract``; ContractError naming what does not fit.

    Lenient where the old readers were (``"42"`` is read as 42, unknown keys are ignored,
    so a producer may add fields), strict about what a consumer relies on.
    """
    name = contract.event_type()
    if version != contract.version:
        raise ContractError(
            f"{name} version {version} is not known here (this service reads version {contract.version})"
        )
    try:
        return msgspec.convert(payload, contract, strict=False)
    except msgspec.ValidationError as exc:
        raise ContractError(f"{name} payload does not fit its contract: {exc}") from exc
