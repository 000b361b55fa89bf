"""URL patterns every service mounts: health, metrics, admin, OpenAPI schema, the internal event replay."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from shared.health import health
from shared.messaging.api import ReplayEventsView
from shared.metrics import metrics_view

common_urlpatterns = [
    path("health", health, name="health"),
    # Prometheus text, on the service's own port; the gateway's allowlist never forwards it.
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("internal/events/replay", ReplayEventsView.as_view(), name="events-replay"),
    path("api/schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
]
