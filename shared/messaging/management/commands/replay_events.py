"""Publish outbox rows again, by time range, type or aggregate: recovery after a lost broker.

Consumers apply each event once (inbox), so replaying more than was lost is safe.
"""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import replay


def _when(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not an ISO 8601 time: {value}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Re-publish outbox events (all, or filtered by --since/--until/--type/--aggregate-id)."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_when)
        parser.add_argument("--until", type=_when)
        parser.add_argument("--type", action="append", dest="types", help="event type (repeatable)")
        parser.add_argument("--aggregate-id")
        parser.add_argument("--unpublished", action="store_true", help="only rows never acknowledged")
        parser.add_argument("--dry-run", action="store_true")

    def handle(
        self, *args, since=None, until=None, types=None, aggregate_id=None, unpublished=False, dry_run=False, **options
    ):
        rows = OutboxEvent.objects.all()
        if since:
            rows = rows.filter(occurred_at__gte=since)
        if until:
            rows = rows.filter(occurred_at__lt=until)
        if types:
            rows = rows.filter(event_type__in=types)
        if aggregate_id:
            rows = rows.filter(aggregate_id=aggregate_id)
        if unpublished:
            rows = rows.filter(published_at__isnull=True)
        count = rows.count()
        if dry_run:
            self.stdout.write(json.dumps({"would_replay": count}))
            return
        try:
            sent = replay(rows)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"replayed": sent}))
