"""End unpaid orders past their payment deadline now (what the beat job does every few seconds)."""

from django.core.management.base import BaseCommand

from orders import services


class Command(BaseCommand):
    help = "Expire PENDING_PAYMENT orders whose payment deadline has passed."

    def handle(self, *args, **options):
        self.stdout.write(f"expired {services.expire_overdue_orders()} orders")
