"""Show the outbox: how many events wait, the oldest one, the last errors."""

import json

from django.core.management.base import BaseCommand
from django.db.models import Count, Min

from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import publish_all_pending


class Command(BaseCommand):
    help = "Outbox status as JSON; --publish sends what is due now."

    def add_arguments(self, parser):
        parser.add_argument("--publish", action="store_true")

    def handle(self, *args, publish=False, **options):
        if publish:
            self.stderr.write(f"published {publish_all_pending()} events")
        pending = OutboxEvent.objects.filter(published_at__isnull=True)
        agg = pending.aggregate(n=Count("id"), oldest=Min("occurred_at"))
        by_type = dict(pending.values_list("event_type").annotate(n=Count("id")).values_list("event_type", "n"))
        errors = list(pending.exclude(last_error="").values_list("last_error", flat=True)[:3])
        self.stdout.write(
            json.dumps(
                {
                    "pending": agg["n"],
                    "oldest_pending": agg["oldest"].isoformat() if agg["oldest"] else None,
                    "pending_by_type": by_type,
                    "published": OutboxEvent.objects.filter(published_at__isnull=False).count(),
                    "last_errors": errors,
                },
                indent=2,
            )
        )
