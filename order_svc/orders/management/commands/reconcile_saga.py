"""Compare orders with payments and reservations now, repair, and print what was repaired."""

import json

from django.core.management.base import BaseCommand

from orders.reconcile import reconcile_saga


class Command(BaseCommand):
    help = (
        "Find charges the orders do not show, orders inventory does not show and reservations without an order; "
        "repair each through the saga's events (a beat job does this every five minutes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--grace", type=float, help="seconds a change must be old to count (default: setting)")
        parser.add_argument("--window", type=float, help="seconds back to look (default: setting)")

    def handle(self, *args, grace=None, window=None, **options):
        repairs = reconcile_saga(grace_seconds=grace, window_seconds=window)
        self.stdout.write(json.dumps({"repaired": [r.as_dict() for r in repairs]}))
