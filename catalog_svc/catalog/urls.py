from django.urls import path

from catalog import api

urlpatterns = [
    path("cloth/list", api.ClothListView.as_view(), name="cloth-list"),
    path("cloth/detail/<int:cloth_id>", api.ClothDetailView.as_view(), name="cloth-detail"),
    path("cloth/details", api.ClothDetailsView.as_view(), name="cloth-details"),
]
