"""Settings of the payment service: the shared ones, plus what is its own."""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings("payment", base_dir=BASE_DIR, apps=["payments"])
globals().update(_shared)
SPECTACULAR_SETTINGS = {
    **_shared["SPECTACULAR_SETTINGS"],
    "ENUM_NAME_OVERRIDES": {"PaymentStatusEnum": "payments.models.PaymentStatus"},
}

# Dotted path of the PaymentProvider class that charges and refunds.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="payments.providers.FakeProvider")
# The fake provider's outcome for card numbers other than the test cards (for load tests).
PAYMENT_FAKE_DECLINE_RATE = env.float("PAYMENT_FAKE_DECLINE_RATE", default=0.0)
PAYMENT_FAKE_TIMEOUT_RATE = env.float("PAYMENT_FAKE_TIMEOUT_RATE", default=0.0)
# With a seed, the fake's draws are fixed per payment and attempt: repeatable runs.
PAYMENT_FAKE_SEED = env.str("PAYMENT_FAKE_SEED", default="")
