"""A throw-away stack emptied before a test run: its databases, its Redis database, its demo mark."""

from __future__ import annotations

import os

import psycopg
import pytest
import redis

from devstack import stacks
from devstack.prepare import create_databases, empty_stack_data
from devstack.stacks import Stack
from shared.topology import SERVICES

SERVER = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Stack:
    monkeypatch.setattr(stacks, "RUN", tmp_path)  # its run folder, not this checkout's
    return Stack("emptytest", 28000, 29092, 13, "shop_emptytest_")


def _databases(prefix: str) -> set[str]:
    with psycopg.connect(SERVER + "/postgres", autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])}


def test_its_databases_redis_database_and_demo_mark_are_emptied(stack):
    create_databases(stack)
    member = stack.database_url("member")
    with psycopg.connect(member, autocommit=True) as conn:
        conn.execute("CREATE TABLE left_behind (n int)")
        held = psycopg.connect(member)  # a connection still open (a process of the old stack)
    own, other = redis.Redis.from_url(stack.redis_url), redis.Redis.from_url(stack.redis_url.rsplit("/", 1)[0] + "/14")
    own.set("member:rl:email_send_ip:x", 2000)
    other.set("emptytest:not-mine", 1)
    stack.dir.mkdir(parents=True)
    (stack.dir / "demo-loaded").touch()
    try:
        assert _databases("shop_emptytest_") == {f"shop_emptytest_{s}" for s in SERVICES}
        empty_stack_data(stack)
        assert _databases("shop_emptytest_") == set()
        assert own.dbsize() == 0 and other.get("emptytest:not-mine") == b"1"
        assert not (stack.dir / "demo-loaded").exists()
        create_databases(stack)  # `up` makes them again, empty
        with psycopg.connect(member) as conn:
            assert conn.execute("SELECT to_regclass('left_behind')").fetchone() == (None,)
    finally:
        held.close()
        other.delete("emptytest:not-mine")
        empty_stack_data(stack)


def test_the_developers_stack_keeps_its_data():
    with pytest.raises(ValueError):
        empty_stack_data(stacks.make_stack("dev"))
