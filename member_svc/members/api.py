"""HTTP views of the member service: validate, call a service, serialize.

The member comes only from ``request.user`` (the identity the gateway vouched for).
"""

from __future__ import annotations

import ipaddress

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members import selectors, services
from members.serializers import (
    EmailSentSerializer,
    EmailSerializer,
    EmailVerifiedSerializer,
    EmailVerifySerializer,
    JoinedSerializer,
    JoinSerializer,
    LoginSerializer,
    PasswordChangeSerializer,
    ProfileSerializer,
    TokenPairSerializer,
)
from shared.errors import NotAuthenticated
from shared.internal_auth import IsInternal
from shared.openapi import shop_errors

REFRESH_HEADER = OpenApiParameter(
    "Refresh-Token",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="The refresh token from login (or the last refresh).",
)


def client_ip(request: Request) -> str:
    """The caller's IP. X-Forwarded-For is believed only from the gateway, which sets it itself."""
    raw = ""
    if getattr(request._request, "is_internal", False):
        raw = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
    raw = raw or request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return ""


def _tokens(pair: services.TokenPair) -> Response:
    return Response(
        TokenPairSerializer(
            {
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "token_type": pair.token_type,
                "expires_in": pair.expires_in,
                "member_id": pair.member_id,
            }
        ).data
    )


class PublicView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []


class EmailSendView(PublicView):
    @extend_schema(
        request=EmailSerializer,
        responses={202: EmailSentSerializer},
        summary="Mail a 6-digit verification code (resend cooldown, rate-limited)",
    )
    @shop_errors(429)
    def post(self, request: Request) -> Response:
        body = EmailSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        email = services.normalize_email(body.validated_data["email"])
        expires_in = services.send_email_code(email=email, ip=client_ip(request))
        return Response(
            EmailSentSerializer({"email": email, "expires_in": expires_in}).data, status=status.HTTP_202_ACCEPTED
        )


class EmailVerifyView(PublicView):
    @extend_schema(
        request=EmailVerifySerializer,
        responses={200: EmailVerifiedSerializer},
        summary="Check a mailed code (a few tries, then the code is dead)",
    )
    @shop_errors(429)
    def post(self, request: Request) -> Response:
        body = EmailVerifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        email = services.normalize_email(body.validated_data["email"])
        services.verify_email_code(email=email, code=body.validated_data["code"])
        return Response(EmailVerifiedSerializer({"email": email, "verified": True}).data)


class JoinView(PublicView):
    @extend_schema(
        request=JoinSerializer, responses={201: JoinedSerializer}, summary="Join with a verified e-mail address"
    )
    @shop_errors(409)
    def post(self, request: Request) -> Response:
        body = JoinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = services.join(**body.validated_data)
        return Response(
            JoinedSerializer({"member_id": member.pk, "email": member.email, "name": member.name}).data,
            status=status.HTTP_201_CREATED,
        )


class LoginView(PublicView):
    @extend_schema(
        request=LoginSerializer,
        responses={200: TokenPairSerializer},
        summary="Log in on a device: a short-lived access token and this device's refresh token",
    )
    @shop_errors(401, 429)
    def post(self, request: Request) -> Response:
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pair = services.login(
            **body.validated_data, ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")
        )
        return _tokens(pair)


class RefreshView(PublicView):
    @extend_schema(
        parameters=[REFRESH_HEADER],
        responses={200: TokenPairSerializer},
        summary="Rotate the refresh token; a reused one ends the device's session",
    )
    @shop_errors(401)
    def get(self, request: Request) -> Response:
        token = request.headers.get("Refresh-Token", "").strip()
        if not token:
            raise NotAuthenticated("The Refresh-Token header is missing.")
        pair = services.refresh_session(
            refresh_token=token, ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")
        )
        return _tokens(pair)


class MyPageView(APIView):
    @extend_schema(responses={200: ProfileSerializer}, summary="My profile")
    @shop_errors(404)
    def get(self, request: Request) -> Response:
        member = selectors.member_profile(member_id=request.user.member_id)
        return Response(ProfileSerializer(member).data)

    @extend_schema(
        request=ProfileSerializer,
        responses={200: ProfileSerializer},
        summary="Change my name, phone and address (e-mail and role are not editable)",
    )
    @shop_errors(404)
    def put(self, request: Request) -> Response:
        body = ProfileSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = services.update_profile(
            member_id=request.user.member_id,
            name=body.validated_data["name"],
            phone=body.validated_data["phone"],
            address=body.validated_data["address"],
        )
        return Response(ProfileSerializer(member).data)


class PasswordView(APIView):
    @extend_schema(
        request=PasswordChangeSerializer,
        responses={204: OpenApiResponse(description="Changed")},
        summary="Change my password; every other session ends",
    )
    @shop_errors(401, 404, 429)
    def patch(self, request: Request) -> Response:
        body = PasswordChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.change_password(
            member_id=request.user.member_id, session_id=request.user.session_id, **body.validated_data
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutView(APIView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Logged out")},
        summary="Log out of this device (its access tokens stop working at once)",
    )
    def delete(self, request: Request) -> Response:
        services.logout(member_id=request.user.member_id, session_id=request.user.session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Logged out everywhere")},
        summary="Log out of every device",
    )
    def delete(self, request: Request) -> Response:
        services.end_all_sessions(member_id=request.user.member_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(exclude=True)
class RestoreRevocationsView(APIView):
    """For the gateway, when Redis lost the revocations: write them back from PostgreSQL."""

    permission_classes = [IsInternal]

    def post(self, request: Request) -> Response:
        return Response(services.restore_revocations())
