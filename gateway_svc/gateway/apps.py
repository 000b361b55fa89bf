from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        from gateway import early  # noqa: PLC0415 - the app registry is ready now
        from shared import gunicorn_worker  # noqa: PLC0415

        if early.hold_refused not in gunicorn_worker.refusal_listeners:
            gunicorn_worker.refusal_listeners.append(early.hold_refused)
