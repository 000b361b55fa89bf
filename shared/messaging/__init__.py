"""Integration events: the envelope, the outbox (publishing) and the inbox (consuming)."""
