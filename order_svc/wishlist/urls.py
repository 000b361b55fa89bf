from django.urls import path

from wishlist import api

urlpatterns = [
    path("wishlist", api.WishlistView.as_view(), name="wishlist"),
    path("wishlist/add", api.AddItemView.as_view(), name="wishlist-add"),
    path("wishlist/update", api.UpdateItemView.as_view(), name="wishlist-update"),
    path("wishlist/delete", api.DeleteItemView.as_view(), name="wishlist-delete"),
]
