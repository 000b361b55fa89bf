from django.urls import include, path

from shared.urls import common_urlpatterns

urlpatterns = [
    *common_urlpatterns,
    path("", include("inventory.urls")),
]
