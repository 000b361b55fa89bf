"""Finish gate updates left undone (a crash, a Redis error, a concurrent rebuild); JSON report."""

import json

from django.core.management.base import BaseCommand

from inventory import services


class Command(BaseCommand):
    help = (
        "Repair gate records PostgreSQL contradicts (the beat job does this every minute). "
        "Records younger than --min-age seconds are left to the request that made them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cloth", type=int, action="append", dest="clothes", help="cloth id (repeatable)")
        parser.add_argument("--min-age", type=float, default=None, help="seconds (default: the setting, 120)")

    def handle(self, *args, clothes=None, min_age=None, **options):
        report = services.repair_gate(cloth_ids=clothes, min_age_seconds=min_age)
        self.stdout.write(json.dumps(report))
