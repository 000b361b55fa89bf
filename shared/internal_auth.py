"""Trust between the gateway and the services.

The gateway verifies the member's JWT at the edge, strips any identity headers the
client sent, and forwards the identity as ``X-Member-Id`` / ``X-Session-Id`` together
with ``X-Internal-Token`` (a secret only the gateway and the services know). A service
trusts identity headers only on a request that carries the secret; the same secret
marks service-to-service calls, so internal endpoints refuse everything else.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from shared.errors import NotFound

INTERNAL_TOKEN_HEADER = "X-Internal-Token"
MEMBER_ID_HEADER = "X-Member-Id"
SESSION_ID_HEADER = "X-Session-Id"
CALLER_HEADER = "X-Caller"


@dataclass(frozen=True)
class Member:
    """The authenticated member of a request, as the gateway vouched for it."""

    member_id: int
    session_id: str = ""
    is_authenticated: bool = True

    @property
    def pk(self) -> int:
        return self.member_id


def is_internal_token(value: str | None) -> bool:
    return bool(value) and hmac.compare_digest(value.encode(), settings.INTERNAL_API_SECRET.encode())


class InternalAuthMiddleware:
    """Sets ``request.is_internal`` and ``request.member`` (or None) for every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.is_internal = is_internal_token(request.META.get("HTTP_X_INTERNAL_TOKEN"))
        request.member = None
        if request.is_internal:
            raw = request.META.get("HTTP_X_MEMBER_ID", "")
            if raw.isdigit():
                request.member = Member(int(raw), request.META.get("HTTP_X_SESSION_ID", ""))
        return self.get_response(request)


class GatewayIdentityAuthentication(BaseAuthentication):
    """DRF authentication from the identity the middleware established."""

    def authenticate(self, request):
        member = getattr(request._request, "member", None)
        return (member, None) if member is not None else None

    def authenticate_header(self, request) -> str:
        # Having a header makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="shop"'


class IsMember(BasePermission):
    """A member the gateway authenticated."""

    def has_permission(self, request, view) -> bool:
        return request.user is not None and getattr(request.user, "member_id", None) is not None


class IsInternal(BasePermission):
    """Only other services (and the gateway) may call. Outsiders get 404, not a hint."""

    def has_permission(self, request, view) -> bool:
        if not getattr(request._request, "is_internal", False):
            raise NotFound()
        return True


def internal_headers(*, member_id: int | None = None, request_id: str | None = None) -> dict[str, str]:
    headers = {INTERNAL_TOKEN_HEADER: settings.INTERNAL_API_SECRET, CALLER_HEADER: settings.SERVICE_NAME}
    if member_id is not None:
        headers[MEMBER_ID_HEADER] = str(member_id)
    if request_id:
        headers["X-Request-Id"] = request_id
    return headers
