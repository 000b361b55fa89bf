"""Add units to a variant (or correct its total with --correct), through the ledger."""

import json

from django.core.management.base import BaseCommand, CommandError

from inventory import services
from shared.errors import ShopError


class Command(BaseCommand):
    help = "restock --variant ID --quantity N [--reason TEXT] [--correct] (a correction may be negative)"

    def add_arguments(self, parser):
        parser.add_argument("--variant", type=int, required=True)
        parser.add_argument("--quantity", type=int, required=True)
        parser.add_argument("--reason", default="")
        parser.add_argument("--correct", action="store_true", help="correct the total by a signed quantity")
        parser.add_argument("--actor", default="operator")

    def handle(self, *args, variant, quantity, reason, correct, actor, **options):
        try:
            if correct:
                row = services.correct_stock(variant_id=variant, delta=quantity, reason=reason, actor=actor)
            else:
                row = services.restock(variant_id=variant, quantity=quantity, reason=reason, actor=actor)
        except ShopError as exc:
            raise CommandError(f"{exc.code}: {exc.message} {exc.fields or ''}".strip()) from exc
        self.stdout.write(json.dumps(row))
