from django.urls import include, path

from orders import api

urlpatterns = [
    path("orders/add", api.PlaceOrderView.as_view(), name="orders-add"),
    path("orders/add/Wishlist", api.WishlistOrderView.as_view(), name="orders-add-wishlist"),
    path("orders/cancel", api.CancelOrderView.as_view(), name="orders-cancel"),
    path("orders/refund", api.RefundOrderView.as_view(), name="orders-refund"),
    path("orders/detail/<int:order_id>", api.OrderDetailView.as_view(), name="orders-detail"),
    path("orders/list/<int:member_id>", api.MemberOrdersView.as_view(), name="orders-list"),
    path("internal/orders/<int:order_id>", api.InternalOrderView.as_view(), name="internal-order"),
    path(
        "internal/orders/<int:order_id>/payment-hold",
        api.InternalPaymentHoldView.as_view(),
        name="internal-order-payment-hold",
    ),
    path("", include("wishlist.urls")),
]
