"""Ops screens: members with their active sessions, and ending sessions (same services as the API)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from members import services
from members.models import DeviceSession, EmailVerification, Member


class ActiveSessionInline(admin.TabularInline):
    model = DeviceSession
    fields = ("sid", "device_name", "ip", "user_agent", "created_at", "last_used_at", "rotations")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "active sessions"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(revoked_at__isnull=True, refresh_expires_at__gt=timezone.now())

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "name", "role", "is_active", "joined_at", "active_session_count")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("email", "name", "phone")
    ordering = ("-id",)
    readonly_fields = ("email", "joined_at", "last_login", "password")
    fields = (
        "email",
        "name",
        "phone",
        "address",
        "role",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "joined_at",
        "last_login",
        "password",
    )
    filter_horizontal = ("groups", "user_permissions")
    inlines = [ActiveSessionInline]
    actions = ["end_all_sessions"]

    def has_add_permission(self, request):
        return False  # members join through the API; staff with `manage.py createsuperuser`

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # A deactivated member is logged out everywhere at once, not when the tokens expire.
            services.end_all_sessions(member_id=obj.pk, reason="deactivated")

    @admin.display(description="active sessions")
    def active_session_count(self, obj: Member) -> int:
        return obj.sessions.filter(revoked_at__isnull=True, refresh_expires_at__gt=timezone.now()).count()

    @admin.action(description="End every session of the selected members (log out everywhere)")
    def end_all_sessions(self, request, queryset):
        ended = sum(services.end_all_sessions(member_id=m.pk, reason="ended_by_staff") for m in queryset)
        self.message_user(request, f"{ended} sessions ended.", messages.SUCCESS)


@admin.register(DeviceSession)
class DeviceSessionAdmin(admin.ModelAdmin):
    list_display = (
        "sid",
        "member",
        "device_name",
        "ip",
        "created_at",
        "last_used_at",
        "rotations",
        "revoked_at",
        "revoked_reason",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "revoked_reason")
    search_fields = ("sid", "member__email", "device_name")
    list_select_related = ("member",)
    readonly_fields = [f.name for f in DeviceSession._meta.fields]
    actions = ["end_sessions"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="End the selected sessions")
    def end_sessions(self, request, queryset):
        ended = sum(services.end_session(session_id=s.sid) for s in queryset)
        self.message_user(request, f"{ended} sessions ended.", messages.SUCCESS)


@admin.register(EmailVerification)
class EmailVerificationAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "created_at", "expires_at", "tries", "verified_at", "consumed_at")
    search_fields = ("email",)
    readonly_fields = [f.name for f in EmailVerification._meta.fields]
    exclude = ("code_hash",)

    def has_add_permission(self, request):
        return False
