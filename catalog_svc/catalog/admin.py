"""Ops screens for clothes and drops; creating and editing go through the catalog's services."""

from __future__ import annotations

from django.contrib import admin, messages

from catalog import services
from catalog.models import Cloth, Variant
from shared.errors import ShopError


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 1
    fields = ("size", "shown_stock", "sort_order")
    can_delete = False  # the inventory holds stock of every variant ever created
    # shown_stock is the first stock of a new size; after that the inventory owns the count
    # (restock there) and an edit here is ignored: the shop shows the inventory's reports.


@admin.register(Cloth)
class ClothAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "brand", "category", "price", "sale_starts_at", "purchase_limit", "created_at")
    list_filter = ("brand", "category")
    search_fields = ("name", "brand")
    inlines = [VariantInline]
    fields = services.EDITABLE_FIELDS

    def save_model(self, request, obj, form, change):
        # Saved in save_related, together with the variants, through the services.
        pass

    def save_related(self, request, form, formsets, change):
        data = {f: form.cleaned_data.get(f) for f in self.fields}
        data["images"] = data["images"] or []
        data["purchase_limit"] = data["purchase_limit"] or 0
        new_sizes = []
        for formset in formsets:
            # The admin's change message reads these; the services did the saving.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for f in formset.forms:
                cd = getattr(f, "cleaned_data", None) or {}
                if not cd or not cd.get("size"):
                    continue
                if f.instance.pk:
                    if {"size", "sort_order"} & set(f.changed_data):
                        Variant.objects.filter(pk=f.instance.pk).update(size=cd["size"], sort_order=cd["sort_order"])
                else:
                    new_sizes.append((cd["size"], int(cd.get("shown_stock") or 0)))
        try:
            if change:
                services.update_cloth(
                    cloth_id=form.instance.pk,
                    new_sizes=new_sizes or None,
                    **{f: data[f] for f in form.changed_data if f in data},
                )
            else:
                cloth, problem = services.create_cloth(
                    sizes=new_sizes or None,
                    **{
                        k: (v if v is not None else "")
                        for k, v in data.items()
                        if k not in ("sale_starts_at", "purchase_limit", "images", "price")
                    },
                    price=data["price"],
                    images=data["images"],
                    sale_starts_at=data["sale_starts_at"],
                    purchase_limit=data["purchase_limit"],
                )
                form.instance.pk = form.instance.id = cloth.pk
                if problem:
                    self.message_user(
                        request,
                        f"Inventory not reached now ({problem}); the event will register the stock.",
                        level=messages.WARNING,
                    )
        except ShopError as exc:
            self.message_user(request, f"Not saved: {exc.message} {exc.fields or ''}", level=messages.ERROR)
            raise
