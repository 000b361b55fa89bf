"""Ops screen for payments: by state, with their order and the provider's references."""

from django.contrib import admin

from payments.models import Payment
from shared.staff import order_links


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = (
        "payment_id",
        "order_id",
        "order_status",
        "member_id",
        "amount",
        "status",
        "provider",
        "provider_reference",
        "refund_reference",
        "attempts",
        "created_at",
        "elsewhere",
    )
    list_filter = ("status", "provider", "created_at")
    search_fields = ("=payment_id", "=order_id", "=member_id", "provider_reference", "refund_reference")
    readonly_fields = [*(f.name for f in Payment._meta.fields), "elsewhere"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="order · reservation · payment")
    def elsewhere(self, obj: Payment) -> str:
        return order_links(obj.order_id)
