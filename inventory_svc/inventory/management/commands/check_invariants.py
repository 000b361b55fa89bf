"""Check the stock invariants (conservation, ledger, reservations, Redis vs PostgreSQL); JSON report."""

import json

from django.core.management.base import BaseCommand

from inventory import selectors


class Command(BaseCommand):
    help = "Check available + reserved + sold = total and friends; exits 1 listing the differences."

    def add_arguments(self, parser):
        parser.add_argument("--no-gate", action="store_true", help="skip comparing Redis with PostgreSQL")

    def handle(self, *args, no_gate=False, **options):
        checked, diffs = selectors.invariant_differences(with_gate=not no_gate)
        self.stdout.write(json.dumps({"ok": not diffs, "variants_checked": checked, "differences": diffs}, indent=2))
        if diffs:
            raise SystemExit(1)
