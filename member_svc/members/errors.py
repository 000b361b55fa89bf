"""Errors of the member service that the shared set does not have."""

from shared.errors import ShopError


class EmailNotVerified(ShopError):
    status_code, code, default_message = 400, "email_not_verified", "Verify this e-mail address with a code first."
