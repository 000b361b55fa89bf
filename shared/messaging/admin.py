from django.contrib import admin

from shared.messaging.models import BrokerEpoch, DeadLetter, OutboxEvent, ProcessedEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "aggregate_type", "aggregate_id", "occurred_at", "published_at", "attempts")
    list_filter = ("event_type", ("published_at", admin.EmptyFieldListFilter))
    search_fields = ("aggregate_id", "event_id")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(admin.ModelAdmin):
    list_display = ("id", "consumer", "event_type", "event_id", "processed_at")
    list_filter = ("consumer", "event_type")
    search_fields = ("event_id",)

    def has_add_permission(self, request):
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "consumer", "topic", "event_type", "state", "attempts", "created_at")
    list_filter = ("state", "consumer", "event_type")
    search_fields = ("event_id",)
    readonly_fields = (
        "consumer",
        "topic",
        "partition",
        "offset",
        "event_id",
        "event_type",
        "raw",
        "error",
        "attempts",
        "created_at",
        "resolved_at",
    )


@admin.register(BrokerEpoch)
class BrokerEpochAdmin(admin.ModelAdmin):
    """The brokers this service published into, and what it published again on finding each."""

    list_display = ("epoch", "first_seen_at", "last_seen_at", "replayed")
    readonly_fields = ("epoch", "first_seen_at", "last_seen_at", "replayed")

    def has_add_permission(self, request):
        return False
