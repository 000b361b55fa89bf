"""Members, their device sessions and refresh tokens, and e-mail verification codes."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class MemberManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # The whole address, not only the domain: one mailbox, one member.
        return (email or "").strip().lower()

    def create_user(self, email: str, password: str | None = None, **fields) -> Member:
        member = self.model(email=self.normalize_email(email), **fields)
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(self, email: str, password: str | None = None, **fields) -> Member:
        fields.update(is_staff=True, is_superuser=True, role=Member.Role.ADMIN)
        fields.setdefault("name", "Admin")
        return self.create_user(email, password, **fields)


class Member(AbstractBaseUser, PermissionsMixin):
    """A buyer (or an ops staff member, who logs into this service's admin)."""

    class Role(models.TextChoices):
        MEMBER = "MEMBER", "member"
        STAFF = "STAFF", "staff"
        ADMIN = "ADMIN", "admin"

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=100)
    phone = models.CharField(max_length=32, blank=True, default="")
    address = models.CharField(max_length=255, blank=True, default="")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log into this admin.")
    joined_at = models.DateTimeField(default=timezone.now)
    tokens_not_before = models.DateTimeField(
        null=True, blank=True, help_text="Access tokens issued up to this moment are dead (logout everywhere)."
    )

    objects = MemberManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.email


class DeviceSession(models.Model):
    """One login on one device: the ``sid`` in its access tokens and its refresh-token family."""

    sid = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessions")
    device_name = models.CharField(max_length=100, blank=True, default="")
    user_agent = models.CharField(max_length=255, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    refresh_expires_at = models.DateTimeField()
    rotations = models.PositiveIntegerField(default=0, help_text="How often its refresh token was rotated.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-last_used_at"]
        indexes = [models.Index(fields=["member", "revoked_at"], name="session_member_active")]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.device_name or self.sid[:8]}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.refresh_expires_at > timezone.now()


class RefreshToken(models.Model):
    """A refresh token ever issued to a session (only its SHA-256 is kept).

    The current one has ``rotated_at`` empty. Presenting one that was rotated already
    means it was copied: the session is ended (reuse detection).
    """

    session = models.ForeignKey(DeviceSession, on_delete=models.CASCADE, related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    generation = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "generation"], name="refresh_generation_once"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.generation}"


class EmailVerification(models.Model):
    """A 6-digit code mailed to an address; only its keyed hash is kept."""

    email = models.EmailField()
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    tries = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True, help_text="Used to join.")
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["email", "-id"], name="verification_latest")]

    def __str__(self) -> str:
        return f"{self.email} ({'verified' if self.verified_at else 'pending'})"
