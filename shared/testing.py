"""Pytest fixtures every service's tests use (imported by each service's conftest.py)."""

from __future__ import annotations

import copy

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from shared.internal_auth import INTERNAL_TOKEN_HEADER, MEMBER_ID_HEADER, SESSION_ID_HEADER
from shared.redis import get_redis


@pytest.fixture
def redis_db():
    """The service's own test Redis database, empty before and after the test."""
    client = get_redis()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def cache_outage(settings):
    """The service's Django cache on a Redis that is down: nothing listens on port 1."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"
    settings.CACHES = caches  # Django drops its cache connections on this change, and on the way back


def _headers(member_id: int | None = None, session_id: str = "test-session") -> dict[str, str]:
    headers = {INTERNAL_TOKEN_HEADER: settings.INTERNAL_API_SECRET}
    if member_id is not None:
        headers[MEMBER_ID_HEADER] = str(member_id)
        headers[SESSION_ID_HEADER] = session_id
    return headers


@pytest.fixture
def anon_client() -> APIClient:
    """A client from outside: no internal token, no identity."""
    return APIClient()


@pytest.fixture
def internal_client() -> APIClient:
    """Another service calling: internal token, no member."""
    client = APIClient()
    client.credentials(**{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in _headers().items()})
    return client


@pytest.fixture
def member_client():
    """member_client(member_id) -> a client the gateway vouched for as that member."""

    def make(member_id: int, session_id: str = "test-session") -> APIClient:
        client = APIClient()
        client.credentials(
            **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in _headers(member_id, session_id).items()}
        )
        return client

    return make


@pytest.fixture(scope="session")
def api_schema() -> dict:
    """The service's OpenAPI document, as /api/schema serves it."""
    from drf_spectacular.generators import SchemaGenerator  # noqa: PLC0415 - only schema tests need it

    return SchemaGenerator().get_schema(request=None, public=True)


def documented_errors(doc: dict, method: str, path: str) -> dict[int, str]:
    """{status: component name} of an operation's error answers (4xx, 5xx) in ``doc``."""
    responses = doc["paths"][path][method.lower()]["responses"]
    return {
        int(status): answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for status, answer in responses.items()
        if int(status) >= 400
    }


def event_payload(event_type: str, **given: object) -> dict:
    """A payload of ``event_type`` that fits its contract: ``given``, and for every other
    required field a neutral value (0, "", [], false, null where allowed, the enum's first
    name, now). For tests of a handler that cares about a few of the fields."""
    import datetime as dt
    import enum
    import types
    import typing
    from decimal import Decimal

    import msgspec

    from shared.contracts import CONTRACTS

    def neutral(tp: object) -> object:
        args = typing.get_args(tp)
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            return None if type(None) in args else neutral(args[0])
        if typing.get_origin(tp) is list:
            return []
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return next(iter(tp)).value
        return {int: 0, str: "", bool: False, Decimal: "0", dt.datetime: dt.datetime.now(dt.UTC).isoformat()}[tp]

    payload = {}
    for field in msgspec.structs.fields(CONTRACTS[event_type]):
        if field.name in given:
            payload[field.name] = given[field.name]
        elif field.required:
            payload[field.name] = neutral(field.type)
    return payload
