from django.urls import path

from payments import api

urlpatterns = [
    path("payment", api.OpenPaymentView.as_view(), name="payment-open"),
    path("payment/<int:order_id>", api.CompletePaymentView.as_view(), name="payment-complete"),
    path("internal/payments/charged", api.ChargedPaymentsView.as_view(), name="payments-charged"),
]
