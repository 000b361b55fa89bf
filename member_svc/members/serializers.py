"""Input and output shapes of the member API (SPEC: snake_case, ids named for what they are)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from members.models import Member


def _password_min_length() -> int:
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith(".MinimumLengthValidator"):
            return validator.get("OPTIONS", {}).get("min_length", 8)
    return 1


def new_password_field() -> serializers.CharField:
    """A password being chosen: the length the password validators ask for, on the field too.

    The validators (common passwords, likeness to the e-mail...) still run in the service;
    the length is on the field so that the API document states it.
    """
    return serializers.CharField(
        min_length=_password_min_length(), max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )


class EmailSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class EmailSentSerializer(serializers.Serializer):
    email = serializers.EmailField()
    expires_in = serializers.IntegerField(help_text="Seconds the code works.")


class EmailVerifySerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    code = serializers.RegexField(r"^\d{6}$", error_messages={"invalid": "Six digits."})


class EmailVerifiedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    verified = serializers.BooleanField()


class JoinSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = new_password_field()
    name = serializers.CharField(max_length=100)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class JoinedSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    device_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds the access token works.")
    member_id = serializers.IntegerField()


class ProfileSerializer(serializers.ModelSerializer):
    """GET shows all of it; PUT changes name, phone and address only (e-mail and role are not editable)."""

    member_id = serializers.IntegerField(source="pk", read_only=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    class Meta:
        model = Member
        fields = ["member_id", "email", "name", "phone", "address", "joined_at"]
        read_only_fields = ["member_id", "email", "joined_at"]


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = new_password_field()
