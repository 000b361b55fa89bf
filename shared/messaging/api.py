"""The internal API every service has for its events: publish an aggregate's events again.

Used by the saga's reconciliation when another service holds the side of a story whose
event never arrived (``POST /internal/events/replay``); operators have ``replay_events``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from shared.errors import UpstreamUnavailable
from shared.internal_auth import IsInternal
from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import replay


class ReplaySerializer(serializers.Serializer):
    aggregate_type = serializers.CharField(max_length=64)
    aggregate_ids = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1, max_length=1000)
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=50)


@extend_schema(exclude=True)
class ReplayEventsView(APIView):
    """``{aggregate_type, aggregate_ids, event_types?}`` -> ``{replayed}``: those rows published again."""

    permission_classes = [IsInternal]

    def post(self, request):
        s = ReplaySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        rows = OutboxEvent.objects.filter(
            aggregate_type=s.validated_data["aggregate_type"], aggregate_id__in=s.validated_data["aggregate_ids"]
        )
        if s.validated_data.get("event_types"):
            rows = rows.filter(event_type__in=s.validated_data["event_types"])
        try:
            return Response({"replayed": replay(rows)})
        except RuntimeError as exc:
            raise UpstreamUnavailable("The broker did not acknowledge the events; try again.") from exc
