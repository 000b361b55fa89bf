"""List, re-drive or discard dead letters (events a consumer gave up on)."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shared.messaging import handlers
from shared.messaging.events import Event
from shared.messaging.models import DeadLetter


class Command(BaseCommand):
    help = "dead_letters list | redrive ID... | redrive --all | discard ID..."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "redrive", "discard"])
        parser.add_argument("ids", nargs="*", type=int)
        parser.add_argument("--all", action="store_true", help="every open dead letter")

    def handle(self, *args, action, ids, all=False, **options):
        if action == "list":
            rows = DeadLetter.objects.filter(state=DeadLetter.State.OPEN)
            for dl in rows[:200]:
                self.stdout.write(
                    json.dumps(
                        {
                            "id": dl.id,
                            "consumer": dl.consumer,
                            "topic": dl.topic,
                            "event_type": dl.event_type,
                            "event_id": dl.event_id,
                            "error": dl.error[:200],
                            "created_at": dl.created_at.isoformat(),
                        }
                    )
                )
            self.stderr.write(f"{rows.count()} open dead letters")
            return
        rows = DeadLetter.objects.filter(state=DeadLetter.State.OPEN)
        if not all:
            if not ids:
                raise CommandError("name dead letter ids, or --all")
            rows = rows.filter(id__in=ids)
        failed = 0
        for dl in rows:
            if action == "discard":
                dl.state, dl.resolved_at = DeadLetter.State.DISCARDED, timezone.now()
                dl.save(update_fields=["state", "resolved_at"])
                continue
            try:
                applied = handlers.apply_event(dl.consumer, Event.from_json(dl.raw, topic=dl.topic))
            except Exception as exc:  # noqa: BLE001 - report and keep the dead letter open
                failed += 1
                self.stderr.write(f"dead letter {dl.id} failed again: {exc!r}")
                continue
            dl.state, dl.resolved_at = DeadLetter.State.REDRIVEN, timezone.now()
            dl.save(update_fields=["state", "resolved_at"])
            self.stdout.write(f"dead letter {dl.id}: {'applied' if applied else 'had been applied already'}")
        if failed:
            raise CommandError(f"{failed} dead letters failed again")
