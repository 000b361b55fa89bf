"""Ops screens: counts are read-only; restock and corrections go through the service functions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render

from inventory import services
from inventory.models import ClothRule, Reservation, ReservationLine, StockItem, StockMovement
from shared.errors import ShopError


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(help_text="Restock: units to add (> 0). Correction: signed change of the total.")
    reason = forms.CharField(max_length=64, required=False)


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):
    list_display = ("variant_id", "cloth_id", "total", "reserved", "sold", "available", "updated_at")
    search_fields = ("variant_id", "cloth_id")
    readonly_fields = ("variant_id", "cloth_id", "total", "reserved", "sold", "version", "updated_at")
    actions = ["restock_action", "correct_action"]

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
    list_display = ("order_id", "member_id", "state", "deadline", "release_reason", "sell_failed_at", "created_at")
    list_filter = ("state",)
    search_fields = ("order_id", "member_id")
    readonly_fields = [f.name for f in Reservation._meta.fields]
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
