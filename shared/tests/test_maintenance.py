"""The beat job that vacuums churned tables, against the real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from shared.maintenance import vacuum_churned_tables


def _stats(table: str) -> tuple[int, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relname = %s", [table])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, None)


def _wait_for_dead_rows(table: str, at_least: int) -> None:
    deadline = time.monotonic() + 5
    while _stats(table)[0] < at_least:  # the statistics reach shared memory when a statement ends
        assert time.monotonic() < deadline, _stats(table)
        time.sleep(0.05)


@pytest.fixture
def churned_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE maintenance_churn (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute("CREATE TABLE maintenance_quiet (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute("INSERT INTO maintenance_churn SELECT i, 0 FROM generate_series(1, 50) i")
        cursor.execute("INSERT INTO maintenance_quiet SELECT i, 0 FROM generate_series(1, 50) i")
        for _ in range(3):  # as an outbox's rows are: written, then updated
            cursor.execute("UPDATE maintenance_churn SET n = n + 1")
        cursor.execute("UPDATE maintenance_quiet SET n = 1 WHERE id <= 2")
    try:
        yield "maintenance_churn"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE maintenance_churn, maintenance_quiet")


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside a transaction
def test_a_table_with_many_dead_rows_is_vacuumed_and_a_quiet_one_is_not(churned_table, settings):
    settings.DB_VACUUM_DEAD_ROWS, settings.DB_VACUUM_DEAD_FRACTION = 100, 0.5
    _wait_for_dead_rows(churned_table, 150)
    assert _stats(churned_table)[1] is None

    done = vacuum_churned_tables()

    assert churned_table in done and "maintenance_quiet" not in done
    dead, vacuumed_at = _stats(churned_table)
    assert vacuumed_at is not None and dead == 0
    assert churned_table not in vacuum_churned_tables()  # nothing left to do there
