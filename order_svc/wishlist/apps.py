from django.apps import AppConfig


class WishlistConfig(AppConfig):
    name = "wishlist"
    default_auto_field = "django.db.models.BigAutoField"
