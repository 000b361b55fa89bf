from django.contrib import admin

from wishlist.models import WishlistItem


@admin.register(WishlistItem)
class WishlistItemAdmin(admin.ModelAdmin):
    list_display = ("id", "member_id", "variant_id", "name", "size", "quantity", "added_at")
    search_fields = ("=member_id", "=variant_id", "=cloth_id", "name")
