"""Ops screens: counts are read-only; restock, corrections and gate repairs go through the service functions.

The stock list shows each variant's available units in PostgreSQL and in the Redis gate
side by side, and flags a difference.
"""

from __future__ import annotations

from contextvars import ContextVar

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.utils.html import format_html

from inventory import gate, services
from inventory.models import ClothRule, Reservation, ReservationLine, StockItem, StockMovement
from shared.errors import ShopError
from shared.staff import order_links

#: The gate's available units per cloth, read once per cloth for one list page (not per row).
_gate_reads: ContextVar[dict[int, dict[int, int] | None]] = ContextVar("gate_reads")


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(help_text="Restock: units to add (> 0). Correction: signed change of the total.")
    reason = forms.CharField(max_length=64, required=False)


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = (
        "cloth_name",
        "size",
        "variant_id",
        "cloth_id",
        "total",
        "reserved",
        "sold",
        "available",
        "gate_available",
        "gate_agrees",
        "updated_at",
    )
    list_display_links = ("cloth_name", "variant_id")
    search_fields = ("=variant_id", "=cloth_id", "cloth_name")
    readonly_fields = (
        "cloth_name",
        "size",
        "variant_id",
        "cloth_id",
        "total",
        "reserved",
        "sold",
        "version",
        "updated_at",
        "gate_available",
    )
    actions = ["restock_action", "correct_action", "repair_gate_action", "rebuild_gate_action"]

    def changelist_view(self, request, extra_context=None):
        _gate_reads.set({})  # the page renders after this returns, in the same context
        return super().changelist_view(request, extra_context)

    def _gate_of(self, obj: StockItem) -> dict[int, int] | None:
        reads = _gate_reads.get(None)
        if reads is None:
            reads = {}
        if obj.cloth_id not in reads:
            snap = gate.snapshot(obj.cloth_id)
            reads[obj.cloth_id] = snap["avail"] if snap["loaded"] else None
        return reads[obj.cloth_id]

    @admin.display(description="gate available")
    def gate_available(self, obj: StockItem):
        avail = self._gate_of(obj)
        return "not loaded" if avail is None else avail.get(obj.variant_id, "missing")

    @admin.display(description="gate = PostgreSQL")
    def gate_agrees(self, obj: StockItem):
        avail = self._gate_of(obj)
        if avail is None:
            return "-"  # loaded from PostgreSQL on its first use
        if avail.get(obj.variant_id) == obj.available:
            return format_html('<span style="color:#2a7">{}</span>', "yes")
        return format_html(
            '<b style="color:#c00">{}</b>', f"DRIFT {avail.get(obj.variant_id, 0) - obj.available:+d} (or in flight)"
        )

    def has_add_permission(self, request):
        return False  # variants arrive from the catalog (ClothCreated / POST /internal/stock)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="available")
    def available(self, obj: StockItem) -> int:
        return obj.available

    def _quantity_action(self, request, queryset, *, title: str, apply):
        if "apply" in request.POST:
            form = QuantityForm(request.POST)
            if form.is_valid():
                for item in queryset:
                    try:
                        apply(item, form.cleaned_data["quantity"], form.cleaned_data["reason"])
                        self.message_user(request, f"{title}: variant {item.variant_id} done.")
                    except ShopError as exc:
                        self.message_user(
                            request, f"{title}: variant {item.variant_id}: {exc.message}", level=messages.ERROR
                        )
                return None
        else:
            form = QuantityForm()
        return render(
            request,
            "admin/inventory/quantity_action.html",
            {
                "title": title,
                "form": form,
                "items": queryset,
                "action": request.POST.get("action"),
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Restock selected variants")
    def restock_action(self, request, queryset):
        actor = f"admin:{request.user.get_username()}"
        return self._quantity_action(
            request,
            queryset,
            title="Restock",
            apply=lambda item, q, reason: services.restock(
                variant_id=item.variant_id, quantity=q, reason=reason or "admin restock", actor=actor
            ),
        )

    @admin.action(description="Repair the gate of the selected variants' clothes (finish undone updates)")
    def repair_gate_action(self, request, queryset):
        cloth_ids = sorted(set(queryset.values_list("cloth_id", flat=True)))
        result = services.repair_gate(cloth_ids=cloth_ids)
        self.message_user(
            request, f"Gate repair of cloth(es) {cloth_ids}: {result['repaired'] or 'nothing to repair'}."
        )

    @admin.action(description="Rebuild the gate of the selected variants' clothes from PostgreSQL")
    def rebuild_gate_action(self, request, queryset):
        for cloth_id in sorted(set(queryset.values_list("cloth_id", flat=True))):
            if gate.reload(cloth_id):
                self.message_user(request, f"Gate of cloth {cloth_id} rebuilt from PostgreSQL.")
            else:
                self.message_user(request, f"Gate of cloth {cloth_id} not rebuilt (busy or unknown).", messages.ERROR)

    @admin.action(description="Correct the total of selected variants")
    def correct_action(self, request, queryset):
        actor = f"admin:{request.user.get_username()}"
        return self._quantity_action(
            request,
            queryset,
            title="Correction",
            apply=lambda item, q, reason: services.correct_stock(
                variant_id=item.variant_id, delta=q, reason=reason, actor=actor
            ),
        )


@admin.register(ClothRule)
class ClothRuleAdmin(admin.ModelAdmin):
    list_display = ("cloth_id", "sale_starts_at", "purchase_limit", "updated_at")
    readonly_fields = ("cloth_id", "sale_starts_at", "purchase_limit", "updated_at")

    def has_add_permission(self, request):
        return False  # rules come from the catalog


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    extra = 0
    readonly_fields = ("variant_id", "cloth_id", "quantity")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = (
        "order_id",
        "member_id",
        "items",
        "state",
        "deadline",
        "release_reason",
        "sell_failed_at",
        "created_at",
        "elsewhere",
    )
    list_filter = ("state",)
    search_fields = ("=order_id", "=member_id")
    readonly_fields = [*(f.name for f in Reservation._meta.fields), "elsewhere"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description="items")
    def items(self, obj: Reservation) -> str:
        lines = list(obj.lines.all())
        names = {
            i.variant_id: f"{i.cloth_name or f'cloth {i.cloth_id}'} {i.size}".strip()
            for i in StockItem.objects.filter(variant_id__in=[line.variant_id for line in lines])
        }
        return ", ".join(f"{names.get(line.variant_id, line.variant_id)} ×{line.quantity}" for line in lines)

    @admin.display(description="order · reservation · payment")
    def elsewhere(self, obj: Reservation) -> str:
        return order_links(obj.order_id)

    inlines = [ReservationLineInline]
    actions = ["release_action"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Release selected reservations")
    def release_action(self, request, queryset):
        for reservation in queryset:
            try:
                services.release_reservation(
                    order_id=reservation.order_id, reason="admin", actor=f"admin:{request.user.get_username()}"
                )
            except ShopError as exc:
                self.message_user(request, f"order {reservation.order_id}: {exc.message}", level=messages.ERROR)


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    list_display = ("at", "kind", "variant_id", "cloth_id", "quantity", "order_id", "cause", "actor")
    list_filter = ("kind",)
    search_fields = ("variant_id", "order_id", "cloth_id")
    readonly_fields = [f.name for f in StockMovement._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
