"""Run this service's Kafka consumer: every handler in its apps' events.py, one group."""

from django.conf import settings
from django.core.management.base import BaseCommand

from shared.messaging.consumer import EventConsumer, install_signal_handlers


class Command(BaseCommand):
    help = "Consume the events this service handles (commits offsets after each event's transaction)."

    def add_arguments(self, parser):
        parser.add_argument("--group", default=None, help="consumer group (default: the service name)")
        parser.add_argument("--max-messages", type=int, default=None)
        parser.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds")

    def handle(self, *args, group=None, max_messages=None, idle_exit=None, **options):
        consumer = EventConsumer(group or settings.SERVICE_NAME)
        install_signal_handlers(consumer)
        handled = consumer.run(max_messages=max_messages, idle_exit_seconds=idle_exit)
        self.stdout.write(f"consumed {handled} messages")
