"""Every write to a wishlist, and ordering it: one function per use case, each atomic."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from orders import clients
from orders import selectors as order_selectors
from orders import services as order_services
from orders.models import Order

from shared.errors import NotFound, ValidationFailed
from wishlist.models import WishlistItem

_ONCE_PER_MEMBER = "wishlist_variant_once_per_member"


def add_item(*, member_id: int, variant_id: int, quantity: int) -> WishlistItem:
    """Add a variant (known to the catalog); adding one already there adds to its quantity.

    Adds of a variant not there yet may race to insert it: the one that loses adds to the
    row that won, as a second add does, instead of failing on the unique constraint.
    """
    info = clients.variant_details([variant_id]).get(variant_id)
    if info is None:
        raise ValidationFailed("No such item.", fields={"variant_id": ["Unknown variant."]})
    with transaction.atomic():
        while True:
            item = WishlistItem.objects.select_for_update().filter(member_id=member_id, variant_id=variant_id).first()
            if item is not None:
                return _add_quantity(item, info=info, quantity=quantity)
            if WishlistItem.objects.filter(member_id=member_id).count() >= settings.WISHLIST_MAX_ITEMS:
                raise ValidationFailed(
                    fields={"variant_id": [f"A wishlist holds at most {settings.WISHLIST_MAX_ITEMS} items."]}
                )
            try:
                with transaction.atomic():  # a savepoint: a lost insert race leaves the transaction usable
                    new = WishlistItem(member_id=member_id, variant_id=variant_id, quantity=0)
                    return _add_quantity(new, info=info, quantity=quantity)
            except IntegrityError as exc:
                if _constraint_name(exc) != _ONCE_PER_MEMBER:
                    raise
                # Another add inserted this variant first and has committed: the next look finds it.


def _add_quantity(item: WishlistItem, *, info: clients.VariantInfo, quantity: int) -> WishlistItem:
    item.quantity += quantity
    if item.quantity > settings.ORDER_MAX_LINE_QUANTITY:
        raise ValidationFailed(fields={"quantity": [f"At most {settings.ORDER_MAX_LINE_QUANTITY} of one item."]})
    item.cloth_id, item.name, item.size = info.cloth_id, info.name, info.size
    item.save()
    return item


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def update_item(*, member_id: int, variant_id: int, quantity: int) -> WishlistItem:
    with transaction.atomic():
        item = WishlistItem.objects.select_for_update().filter(member_id=member_id, variant_id=variant_id).first()
        if item is None:
            raise NotFound("This item is not in your wishlist.")
        item.quantity = quantity
        item.save(update_fields=["quantity", "updated_at"])
    return item


def remove_item(*, member_id: int, variant_id: int) -> None:
    deleted, _ = WishlistItem.objects.filter(member_id=member_id, variant_id=variant_id).delete()
    if not deleted:
        raise NotFound("This item is not in your wishlist.")


def order_wishlist(
    *, member_id: int, variant_ids: list[int] | None = None, idempotency_key: str | None = None
) -> tuple[Order, bool]:
    """Order the wishlist (or the named variants of it), all or nothing.

    The ordered items leave the wishlist in the order's own transaction: either both
    happen or neither does.
    """
    if idempotency_key:
        # The retry of a wishlist order finds the items gone: answer with the order they became.
        earlier = order_selectors.find_by_idempotency_key(member_id=member_id, idempotency_key=idempotency_key)
        if earlier is not None:
            return earlier, False
    items = list(WishlistItem.objects.filter(member_id=member_id).order_by("added_at", "id"))
    if variant_ids is not None:
        wanted = list(dict.fromkeys(variant_ids))
        present = {item.variant_id for item in items}
        absent = [v for v in wanted if v not in present]
        if absent:
            raise ValidationFailed(fields={"variant_ids": [f"Not in your wishlist: {', '.join(map(str, absent))}."]})
        items = [item for item in items if item.variant_id in set(wanted)]
    if not items:
        raise ValidationFailed("Your wishlist is empty.", fields={"wishlist": ["Your wishlist is empty."]})
    if len(items) > settings.ORDER_MAX_LINES:
        raise ValidationFailed(fields={"variant_ids": [f"At most {settings.ORDER_MAX_LINES} items in one order."]})
    ordered = [item.variant_id for item in items]

    def remove_ordered(order: Order) -> None:
        WishlistItem.objects.filter(member_id=member_id, variant_id__in=ordered).delete()

    return order_services.place_order(
        member_id=member_id,
        lines=[order_services.LineRequest(variant_id=item.variant_id, quantity=item.quantity) for item in items],
        idempotency_key=idempotency_key,
        on_placed=remove_ordered,
    )
