from django.urls import path

from members import api

urlpatterns = [
    path("member/email/send", api.EmailSendView.as_view(), name="member-email-send"),
    path("member/email/verify", api.EmailVerifyView.as_view(), name="member-email-verify"),
    path("member/join", api.JoinView.as_view(), name="member-join"),
    path("member/login", api.LoginView.as_view(), name="member-login"),
    path("member/refresh", api.RefreshView.as_view(), name="member-refresh"),
    path("member/mypage", api.MyPageView.as_view(), name="member-mypage"),
    path("member/password", api.PasswordView.as_view(), name="member-password"),
    path("member/logout", api.LogoutView.as_view(), name="member-logout"),
    path("member/logout/all", api.LogoutAllView.as_view(), name="member-logout-all"),
    path(
        "internal/sessions/revocations/restore",
        api.RestoreRevocationsView.as_view(),
        name="internal-restore-revocations",
    ),
]
