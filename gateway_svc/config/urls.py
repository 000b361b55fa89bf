from django.urls import path, re_path
from gateway import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("api/schema", views.schema, name="schema"),
    path("docs", views.docs, name="docs"),
    path("docs/assets/<str:name>", views.docs_asset, name="docs-asset"),
    path("metrics", views.metrics, name="metrics"),
    re_path(r"", views.proxy, name="proxy"),  # everything else: the allowlist decides
]
