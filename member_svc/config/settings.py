"""Settings of the member service: the shared ones, plus what is its own."""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings("member", base_dir=BASE_DIR, apps=["members"])
globals().update(_shared)

# Members are the Django users of this service, so ops staff log into its admin with them.
AUTH_USER_MODEL = "members.Member"
# Argon2id costs (OWASP's password storage guidance: 19 MiB, 2 passes, 1 lane).
ARGON2_MEMORY_KIB = env.int("ARGON2_MEMORY_KIB", default=19456)
ARGON2_TIME_COST = env.int("ARGON2_TIME_COST", default=2)
ARGON2_PARALLELISM = env.int("ARGON2_PARALLELISM", default=1)
PASSWORD_HASHERS = [
    "members.hashers.ShopArgon2PasswordHasher",  # verifies every argon2 hash, whatever its costs
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# E-mail: any SMTP server when EMAIL_HOST is given, else files a person (and the tests) can read.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
    EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR.parent / ".run" / "dev" / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Drop Shop <no-reply@dropshop.local>")

# E-mail verification codes.
EMAIL_CODE_TTL_SECONDS = env.int("EMAIL_CODE_TTL_SECONDS", default=600)
EMAIL_CODE_MAX_TRIES = env.int("EMAIL_CODE_MAX_TRIES", default=5)
EMAIL_SEND_COOLDOWN_SECONDS = env.int("EMAIL_SEND_COOLDOWN_SECONDS", default=60)
# How long a verified address may be used to join.
EMAIL_VERIFIED_TTL_SECONDS = env.int("EMAIL_VERIFIED_TTL_SECONDS", default=3600)

# A refresh token presented again this soon after its rotation gets the same successor (two
# tabs refreshing at once); later, it counts as copied and ends the device's session.
REFRESH_REUSE_GRACE_SECONDS = env.int("REFRESH_REUSE_GRACE_SECONDS", default=5)

# Rate limits: (requests, window seconds). RATE_LIMIT_SCALE multiplies every count
# (a load test of many members raises it); 0 turns the limits off.
RATE_LIMIT_SCALE = env.float("RATE_LIMIT_SCALE", default=1.0)
RATE_LIMITS = {
    "email_send_address": (env.int("RATE_EMAIL_SEND_PER_ADDRESS", default=5), 3600),
    "email_send_ip": (env.int("RATE_EMAIL_SEND_PER_IP", default=100), 600),
    "login_ip_email": (env.int("RATE_LOGIN_FAILURES_PER_ACCOUNT", default=10), 300),
    "login_ip": (env.int("RATE_LOGIN_FAILURES_PER_IP", default=100), 300),
    "password_member": (env.int("RATE_PASSWORD_FAILURES_PER_MEMBER", default=10), 300),
}

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "purge-expired-member-records": {
        "task": "members.tasks.purge_expired_records",
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
}
