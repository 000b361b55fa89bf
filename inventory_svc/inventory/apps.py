from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from inventory.metrics import collect_stock
        from shared.metrics import register_scrape_collector

        register_scrape_collector("stock", collect_stock)
