"""Ops screens for orders: find them by status, member or item; see their history and events;
cancel or refund through the same service functions the API uses."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from orders import services
from orders.models import Order, OrderLine, OrderTransition
from shared.contracts.order import RefundReason
from shared.errors import ShopError
from shared.messaging.models import OutboxEvent
from shared.staff import order_links


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ("variant_id", "cloth_id", "name", "size", "unit_price", "quantity")

    def has_add_permission(self, request, obj=None):
        return False


class OrderTransitionInline(admin.TabularInline):
    model = OrderTransition
    extra = 0
    can_delete = False
    readonly_fields = ("at", "from_status", "to_status", "cause", "actor", "event_id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("order_id", "member_id", "items", "status", "total", "created_at", "payment_deadline", "elsewhere")
    list_filter = ("status", "created_at")
    # "=" lookups: exact ids, so a search by member, variant or cloth id uses the indexes.
    search_fields = ("=order_id", "=member_id", "=lines__variant_id", "=lines__cloth_id", "lines__name")
    readonly_fields = (
        "order_id",
        "member_id",
        "status",
        "total",
        "payment_deadline",
        "idempotency_key",
        "refund_reason",
        "created_at",
        "updated_at",
        "elsewhere",
        "events",
    )
    exclude = ("request_fingerprint",)
    inlines = [OrderLineInline, OrderTransitionInline]
    actions = ["cancel_orders", "refund_orders"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description="items")
    def items(self, obj: Order) -> str:
        return ", ".join(f"{line.name} {line.size} ×{line.quantity}" for line in obj.lines.all())

    @admin.display(description="order · reservation · payment")
    def elsewhere(self, obj: Order) -> str:
        return order_links(obj.order_id)

    @admin.display(description="events (outbox)")
    def events(self, obj: Order):
        rows = OutboxEvent.objects.filter(aggregate_type="order", aggregate_id=str(obj.order_id)).order_by("id")
        return (
            format_html_join(
                mark_safe("<br>"),  # noqa: S308 - a constant
                '<a href="{}">{}</a> at {} ({})',
                (
                    (
                        reverse("admin:messaging_outboxevent_change", args=[row.id]),
                        row.event_type,
                        row.occurred_at.isoformat(timespec="seconds"),
                        "published" if row.published_at else "waiting",
                    )
                    for row in rows
                ),
            )
            or "-"
        )

    @admin.action(description="Cancel the selected unpaid orders (stock is released)")
    def cancel_orders(self, request, queryset):
        self._apply(request, queryset, services.cancel_order, "cancelled")

    @admin.action(description="Refund the selected paid orders")
    def refund_orders(self, request, queryset):
        self._apply(
            request, queryset, lambda **kw: services.request_refund(reason=RefundReason.ADMIN, **kw), "refund requested"
        )

    def _apply(self, request, queryset, action, done: str) -> None:
        ok = 0
        for order_id in queryset.values_list("order_id", flat=True):
            try:
                action(order_id=order_id, member_id=None, actor=f"admin:{request.user.get_username()}")
                ok += 1
            except ShopError as exc:
                self.message_user(request, f"order {order_id}: {exc.message}", messages.WARNING)
        if ok:
            self.message_user(request, f"{ok} orders {done}.", messages.SUCCESS)
