"""Every write of the member service: one function per use case, each atomic.

Revocation is written to Redis inside the transaction that ends a session, before it
commits: if Redis cannot be written the whole change rolls back (fail closed), so a
session is never "ended" in the database while its access tokens still pass the gateway.

One module per job; callers import from here:

- ``email_codes``: mailing a code to an address and checking it, with the resend cooldown,
  the per-address and per-IP limits and the limited tries;
- ``joining``: a member for a verified address, announced (``MemberJoined``);
- ``passwords``: the rules a new password must meet, and changing it (other sessions end);
- ``logins``: logging in on a device, failed logins limited;
- ``sessions``: the token pair, refreshing (rotation, reuse ends the session), logging out,
  ending one or every session;
- ``profile``: the member's name, phone and address;
- ``revocations``: writing them back to a Redis that lost them (the gateway asks).
"""

from members.services.email_codes import normalize_email, send_email_code, verify_email_code
from members.services.joining import join
from members.services.logins import login
from members.services.passwords import change_password
from members.services.profile import update_profile
from members.services.revocations import restore_revocations
from members.services.sessions import (
    REFRESH_TOKEN_MAX_LENGTH,
    TokenPair,
    end_all_sessions,
    end_session,
    logout,
    refresh_session,
)

__all__ = [
    "REFRESH_TOKEN_MAX_LENGTH",
    "TokenPair",
    "change_password",
    "end_all_sessions",
    "end_session",
    "join",
    "login",
    "logout",
    "normalize_email",
    "refresh_session",
    "restore_revocations",
    "send_email_code",
    "update_profile",
    "verify_email_code",
]
