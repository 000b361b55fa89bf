"""Outbox, inbox and dead letters: the tables every service keeps for its events.

The outbox row is written in the same transaction as the change it announces, so an
event is never lost and never sent for a change that rolled back. The inbox
(``ProcessedEvent``) has a unique (consumer, event_id): a consumer inserts first and
applies the event in the same transaction, so a redelivered event is applied once.
"""

from __future__ import annotations

import uuid

from django.db import models


class AbstractOutboxEvent(models.Model):
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=64)
    event_version = models.PositiveSmallIntegerField(default=1)
    topic = models.CharField(max_length=128)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    request_id = models.CharField(max_length=64, blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id}"


class OutboxEvent(AbstractOutboxEvent):
    class Meta(AbstractOutboxEvent.Meta):
        indexes = [
            # The relay's query: unpublished rows due now, oldest first.
            models.Index(
                fields=["next_attempt_at", "id"], name="outbox_pending", condition=models.Q(published_at__isnull=True)
            ),
            models.Index(fields=["occurred_at"], name="outbox_occurred"),
            models.Index(fields=["aggregate_type", "aggregate_id"], name="outbox_aggregate"),
        ]


class ProcessedEvent(models.Model):
    """The inbox: one row per (consumer, event) applied."""

    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_once_per_consumer")]
        # The retention job's query: rows older than the inbox is kept (shared.maintenance).
        indexes = [models.Index(fields=["processed_at"], name="inbox_processed_at")]

    def __str__(self) -> str:
        return f"{self.consumer} {self.event_type} {self.event_id}"


class DeadLetter(models.Model):
    """An event a consumer gave up on after its retries; also sent to the dead-letter topic."""

    class State(models.TextChoices):
        OPEN = "open", "open"
        REDRIVEN = "redriven", "re-driven"
        DISCARDED = "discarded", "discarded"

    consumer = models.CharField(max_length=64)
    topic = models.CharField(max_length=128)
    partition = models.IntegerField(null=True)
    offset = models.BigIntegerField(null=True)
    event_id = models.CharField(max_length=64, blank=True, default="")
    event_type = models.CharField(max_length=64, blank=True, default="")
    raw = models.TextField()
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.event_type or '?'} {self.state}"


class BrokerEpoch(models.Model):
    """One broker lifetime this service has published into, known by its marker topic's id.

    A broker that comes back empty (the bundled one after any restart, a cluster rebuilt
    from nothing) gives the marker topic a new id. The outbox rows published into the
    broker before it may never have been consumed, so they are published again; this table
    remembers which broker they went to and since when (``shared.messaging.recovery``).
    """

    epoch = models.CharField(max_length=64, unique=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    replayed = models.PositiveIntegerField(default=0, help_text="events published again when this broker was found")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"broker {self.epoch} (since {self.first_seen_at:%Y-%m-%d %H:%M:%S})"
