"""Payments in and out of HTTP."""

from __future__ import annotations

from rest_framework import serializers

from payments.models import Payment


class OpenPaymentSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class CompletePaymentSerializer(serializers.Serializer):
    card_number = serializers.CharField(max_length=40, trim_whitespace=True)

    def validate_card_number(self, value: str) -> str:
        digits = value.replace(" ", "").replace("-", "")
        if not digits.isdigit() or not digits.isascii():
            raise serializers.ValidationError("A card number has digits only.")
        if not 12 <= len(digits) <= 19:
            raise serializers.ValidationError("A card number has 12 to 19 digits.")
        return digits


class PaymentSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = Payment
        fields = ["payment_id", "order_id", "amount", "status"]


class ChargedPaymentsQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    limit = serializers.IntegerField(min_value=1, max_value=10000, default=5000)
