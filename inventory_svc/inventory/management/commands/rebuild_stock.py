"""Load the Redis stock gate from PostgreSQL (the system of record): all clothes or one."""

import json

from django.core.management.base import BaseCommand, CommandError

from inventory import gate
from inventory.models import StockItem


class Command(BaseCommand):
    help = "Rebuild the Redis stock gate from PostgreSQL (--cloth ID for one cloth)."

    def add_arguments(self, parser):
        parser.add_argument("--cloth", type=int, action="append", dest="clothes", help="cloth id (repeatable)")

    def handle(self, *args, clothes=None, **options):
        ids = clothes or sorted(set(StockItem.objects.values_list("cloth_id", flat=True)))
        loaded, missing = [], []
        for cloth_id in ids:
            (loaded if gate.load(cloth_id) else missing).append(cloth_id)
        self.stdout.write(json.dumps({"rebuilt": loaded, "unknown": missing}))
        if missing:
            raise CommandError(f"no stock in PostgreSQL for cloth(es) {missing}")
