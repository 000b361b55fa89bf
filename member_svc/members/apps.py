from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import shared.openapi  # noqa: F401 - registers the bearer scheme with drf-spectacular
