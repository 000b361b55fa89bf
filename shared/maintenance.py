"""Keeping a service's tables lean when PostgreSQL's autovacuum does not: a beat job.

The outbox is a queue: every event is inserted, then updated once the broker has it. Each
update leaves a dead row version behind, and a dead entry in the index of pending rows,
which the relay's query walks on every run until a ``VACUUM`` removes them. Stock counters,
orders and payments are updated in place in the same way. Where autovacuum is off (as on
some development machines) or far behind (by default it waits until a fifth of a table is
dead), every run of the relay, every reservation and every payment grew slower with each
event ever sent: after 13,000 events the relay's query alone cost 4 ms of PostgreSQL.

So each service's beat runs :func:`vacuum_churned_tables` every ``DB_VACUUM_SWEEP_SECONDS``
(60): each table of its database with at least ``DB_VACUUM_DEAD_ROWS`` dead row versions
(1,000), and more than ``DB_VACUUM_DEAD_FRACTION`` (5 %) of its live rows, gets
``VACUUM (ANALYZE)``; a table written that much since it was last analyzed gets ``ANALYZE``.
Where autovacuum keeps up, the job finds nothing to do: one query a minute. ``VACUUM``
takes no lock that stops reads or writes.

Delivered events are not kept for ever either: every ``EVENT_PURGE_SWEEP_SECONDS`` (an
hour) :func:`purge_old_events` deletes the outbox's rows published more than
``OUTBOX_RETENTION_SECONDS`` ago (7 days; never fewer than the broker replay's window, so a
replay finds what it needs: shared.messaging.recovery) and the inbox's rows older than
``INBOX_RETENTION_SECONDS`` (14 days, longer than a broker keeps its topics). Unpublished
rows and dead letters stay whatever their age. It deletes in batches of
``EVENT_PURGE_BATCH`` rows, one short transaction each, so a consumer or a relay never
waits long behind it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from shared.messaging.models import OutboxEvent, ProcessedEvent
from shared.messaging.recovery import MARGIN

logger = logging.getLogger(__name__)

_CHURNED = """
SELECT schemaname, relname, n_dead_tup >= %(rows)s AND n_dead_tup > n_live_tup * %(fraction)s
FROM pg_stat_user_tables
WHERE (n_dead_tup >= %(rows)s AND n_dead_tup > n_live_tup * %(fraction)s)
   OR (n_mod_since_analyze >= %(rows)s AND n_mod_since_analyze > n_live_tup * %(fraction)s)
ORDER BY n_dead_tup DESC
"""


@shared_task(name="shared.maintenance.vacuum_churned_tables", ignore_result=True)
def vacuum_churned_tables() -> list[str]:
    """VACUUM (ANALYZE) the tables with many dead rows, ANALYZE those much written; their names."""
    done: list[str] = []
    params = {"rows": settings.DB_VACUUM_DEAD_ROWS, "fraction": settings.DB_VACUUM_DEAD_FRACTION}
    with connection.cursor() as cursor:  # autocommit: VACUUM cannot run inside a transaction
        cursor.execute(_CHURNED, params)
        for schema, table, dead in cursor.fetchall():
            name = f"{connection.ops.quote_name(schema)}.{connection.ops.quote_name(table)}"
            started = time.monotonic()
            cursor.execute(f"VACUUM (ANALYZE) {name}" if dead else f"ANALYZE {name}")
            logger.info("%s %s in %.2f s", "vacuumed" if dead else "analyzed", table, time.monotonic() - started)
            done.append(table)
    return done


@shared_task(name="shared.maintenance.purge_old_events", ignore_result=True)
def purge_old_events() -> dict[str, int]:
    """Delete the delivered events past their retention; how many rows of each table went."""
    now = timezone.now()
    purged = {"outbox": 0, "inbox": 0}
    if settings.OUTBOX_RETENTION_SECONDS > 0:
        keep = max(settings.OUTBOX_RETENTION_SECONDS, settings.OUTBOX_REPLAY_WINDOW_SECONDS + MARGIN.total_seconds())
        cutoff = now - dt.timedelta(seconds=keep)
        # occurred_at is indexed and never later than published_at
        old = OutboxEvent.objects.filter(occurred_at__lt=cutoff, published_at__lt=cutoff)
        purged["outbox"] = _delete_in_batches(old)
    if settings.INBOX_RETENTION_SECONDS > 0:
        cutoff = now - dt.timedelta(seconds=settings.INBOX_RETENTION_SECONDS)
        purged["inbox"] = _delete_in_batches(ProcessedEvent.objects.filter(processed_at__lt=cutoff))
    if any(purged.values()):
        logger.info("purged %(outbox)s outbox and %(inbox)s inbox rows past their retention", purged)
    return purged


def _delete_in_batches(rows: QuerySet) -> int:
    """Delete ``rows`` a batch at a time (each its own statement and transaction); how many went."""
    deleted = 0
    while True:
        ids = list(rows.order_by().values_list("pk", flat=True)[: settings.EVENT_PURGE_BATCH])
        if not ids:
            return deleted
        deleted += rows.model.objects.filter(pk__in=ids).delete()[0]
