"""One staff sign-in for every service's admin, and links from one admin to another.

Each service keeps its own users and sessions (its own database), so a sign-in at one
admin means nothing to the next. The services do share ``DJANGO_SECRET_KEY``: on a staff
sign-in at any admin, :class:`StaffSignInMiddleware` sets a cookie signed with it
(``shop_staff``: the username and whether they are a superuser, with a time stamp). The
other admins trust that cookie: they sign the person in locally as a mirror user of the
same name (made on first sight, no password of its own), and sign them out when it is gone
(a sign-out anywhere deletes it). The cookie lives ``STAFF_SIGN_IN_SECONDS`` (12 h).

Browsers send a cookie to every port of a host, so each service also names its own session
and CSRF cookies (``<service>_sessionid``...): with one name, the admins overwrote each
other's sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.signals import user_logged_out
from django.core import signing
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

logger = logging.getLogger(__name__)

COOKIE = "shop_staff"
_SALT = "shop.staff-sign-in"
_BACKEND = "django.contrib.auth.backends.ModelBackend"
#: Marks a local session that took part in the shared sign-in: it ends with the cookie.
_SHARED = "shop_staff_shared"


def staff_cookie_value(username: str, *, superuser: bool) -> str:
    return signing.TimestampSigner(salt=_SALT).sign_object({"u": username, "s": bool(superuser)})


def read_staff_cookie(value: str) -> dict | None:
    """The signed-in staff member's ``{"u": username, "s": superuser}``, or None if absent, forged or old."""
    try:
        return signing.TimestampSigner(salt=_SALT).unsign_object(value, max_age=settings.STAFF_SIGN_IN_SECONDS)
    except signing.BadSignature:
        return None


class StaffSignInMiddleware:
    """After AuthenticationMiddleware: the shared staff cookie signs in (and out) at every admin.

    One of ``ADMIN_MIDDLEWARE``: only ``/admin/`` requests reach it (shared.admin_chain).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.COOKIES.get(COOKIE)
        staff = read_staff_cookie(raw) if raw else None
        user = request.user
        if staff is None and user.is_authenticated and request.session.get(_SHARED):
            logout(request)  # signed out at another admin (or the sign-in grew old)
        elif staff is not None and (not user.is_authenticated or user.get_username() != staff["u"]):
            mirror = _mirror_user(staff["u"], superuser=staff["s"])
            if mirror is not None:
                login(request, mirror, backend=_BACKEND)
                request.session[_SHARED] = True
        response = self.get_response(request)
        user = request.user
        if getattr(request, "_staff_signed_out", False):
            response.delete_cookie(COOKIE, samesite="Lax")
        elif user.is_authenticated and user.is_staff and staff is None:
            request.session[_SHARED] = True  # from now on, a sign-out elsewhere ends this session too
            response.set_cookie(
                COOKIE,
                staff_cookie_value(user.get_username(), superuser=user.is_superuser),
                max_age=settings.STAFF_SIGN_IN_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response


def _mirror_user(username: str, *, superuser: bool):
    """This service's user for a staff member signed in elsewhere (made on first sight)."""
    users = get_user_model()
    defaults = {"is_staff": True, "is_superuser": superuser}
    for field in users.REQUIRED_FIELDS:  # e.g. the member service's name
        defaults.setdefault(field, username)
    user, created = users.objects.get_or_create(**{users.USERNAME_FIELD: username}, defaults=defaults)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        logger.info("staff member %s signed in from another service's admin", username)
    elif not user.is_active:
        return None
    elif (user.is_staff, user.is_superuser) != (True, superuser):
        user.is_staff, user.is_superuser = True, superuser
        user.save(update_fields=["is_staff", "is_superuser"])
    return user


@receiver(user_logged_out)
def _signed_out(sender, request: HttpRequest | None, **kwargs) -> None:
    if request is not None:
        request._staff_signed_out = True


# --- links between the admins -----------------------------------------------------------------


def admin_url(service: str, path: str) -> str:
    """``path`` (e.g. ``payments/payment/?order_id=7``) in ``service``'s admin, as a browser reaches it."""
    return f"{settings.ADMIN_URLS[service].rstrip('/')}/admin/{path}"


def admin_link(service: str, path: str, text: str) -> str:
    return format_html('<a href="{}">{}</a>', admin_url(service, path), text)


def order_links(order_id: int) -> str:
    """order -> reservation -> payment: the one order in each service's admin."""
    return format_html(
        "{} · {} · {}",
        admin_link("order", f"orders/order/{order_id}/change/", "order"),
        admin_link("inventory", f"inventory/reservation/?order_id={order_id}", "reservation"),
        admin_link("payment", f"payments/payment/?order_id={order_id}", "payment"),
    )
