from django.urls import path

from catalog import api
from catalog.response_cache import cached_response

urlpatterns = [
    path("cloth/list", cached_response(api.ClothListView.as_view()), name="cloth-list"),
    path("cloth/detail/<int:cloth_id>", cached_response(api.ClothDetailView.as_view()), name="cloth-detail"),
    path("cloth/details", api.ClothDetailsView.as_view(), name="cloth-details"),
]
