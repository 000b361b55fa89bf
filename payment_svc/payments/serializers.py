"""Payments in and out of HTTP."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from payments.models import Payment
from shared import serializers as shared_serializers


class OpenPaymentSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


#: 12 to 19 ASCII digits, which spaces or dashes may group (as printed on the card).
CARD_NUMBER_PATTERN = r"^[ -]*(?:[0-9][ -]*){12,19}$"


class CompletePaymentSerializer(serializers.Serializer):
    # The pattern is a validator, not only a check in code, so the API document states it.
    card_number = serializers.CharField(
        min_length=12,
        max_length=40,
        trim_whitespace=True,
        validators=[
            RegexValidator(CARD_NUMBER_PATTERN, "A card number has 12 to 19 digits; spaces or dashes may group them.")
        ],
    )

    def validate_card_number(self, value: str) -> str:
        return value.replace(" ", "").replace("-", "")


class PaymentSerializer(shared_serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = Payment
        fields = ["payment_id", "order_id", "amount", "status"]
        read_only_fields = fields  # an answer only: every field is always there


class ChargedPaymentsQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    limit = serializers.IntegerField(min_value=1, max_value=10000, default=5000)
