from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "shared.messaging"
    label = "messaging"
    verbose_name = "Events (outbox, inbox, dead letters)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shared.messaging.metrics import collect_dead_letters, collect_outbox
        from shared.metrics import register_scrape_collector

        register_scrape_collector("outbox", collect_outbox)
        register_scrape_collector("dead_letters", collect_dead_letters)
