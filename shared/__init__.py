"""Code every service of the shop needs once: settings, errors, auth, events, outbox, inbox."""
