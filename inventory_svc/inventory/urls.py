from django.urls import path

from inventory import api

urlpatterns = [
    path("internal/reservations", api.ReservationsView.as_view(), name="reservations"),
    path("internal/reservations/lookup", api.ReservationLookupView.as_view(), name="reservation-lookup"),
    path("internal/reservations/<int:order_id>/release", api.ReleaseView.as_view(), name="reservation-release"),
    path("internal/stock", api.RegisterStockView.as_view(), name="stock-register"),
    path("cloth/inventory", api.StockView.as_view(), name="stock"),
]
