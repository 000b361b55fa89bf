"""Producer: `member` (member_svc). Topic: `members` (with `KAFKA_TOPIC_PREFIX`), key =
`member_id`, `aggregate_type` = `member`. Each event is written to the outbox in the same
transaction as the change it announces (`members.services`).
"""

from __future__ import annotations

import datetime as dt

from shared.contracts.base import Contract


class MemberJoined(Contract, frozen=True):
    """A member joined with a verified e-mail address (`POST /member/join`,
    `members.services.join`). No consumer yet (a welcome mail, analytics or a CRM may
    subscribe)."""

    topic = "members"
    aggregate_type = "member"
    key = "member_id"

    member_id: int
    #: lower-case
    email: str
    name: str
    #: UTC
    joined_at: dt.datetime


EVENTS = (MemberJoined,)
NOTES = """\
## Not events: session state in Redis

Logout, logout everywhere, password change and refresh-token reuse take effect at once, so
they are not sent through Kafka. They are written to Redis inside the transaction that ends
the session (see `shared/tokens.py`), where the gateway reads them on every request:

- `auth:sid:<sid>:revoked`: one device session ended (logout, password change for the
  other devices, refresh-token reuse, ended by staff in the admin).
- `auth:member:<member_id>:not_before`: every access token of the member issued up to that
  millisecond is refused (logout everywhere, "end all sessions" in the admin).
"""
