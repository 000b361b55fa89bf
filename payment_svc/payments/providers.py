"""The payment provider interface, and the fake provider the shop runs with by default.

A real provider plugs in behind :class:`PaymentProvider` (setting ``PAYMENT_PROVIDER``, a
dotted path). Every charge carries an idempotency key: the provider charges a key once,
and a retry with the same key answers what the first attempt did.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string

from shared.redis import get_redis, script


class ProviderTimeout(Exception):
    """The provider did not answer: the charge may or may not have happened. Retry with the same key."""


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str = ""
    decline_reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    reference: str
    #: False when the provider accepted the refund but settles it later (REFUND_PENDING).
    settled: bool = True


class PaymentProvider:
    name = "abstract"

    def charge(self, *, idempotency_key: str, amount: Decimal, card_number: str) -> ChargeResult:
        raise NotImplementedError

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: Decimal) -> RefundResult:
        raise NotImplementedError


SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
TIMES_OUT = "4000000000000119"


class FakeProvider(PaymentProvider):
    """Answers like a card network's test cards, and by configured rates for other numbers.

    Its ledger lives in Redis, so every worker process sees the same charges: a key is
    charged once, and ``charges_for`` lets tests count them. With PAYMENT_FAKE_SEED set,
    the outcome of each (key, attempt) is fixed, so a load test's mix is repeatable.
    A rate-drawn timeout happens *after* the charge (the answer is lost, the money is
    taken): the retry with the same key must find the charge, not make a second one.
    """

    name = "fake"
    _CHARGE = "payment:fake:charge:{}"
    _ATTEMPTS = "payment:fake:attempts:{}"
    _REFUND = "payment:fake:refund:{}"
    _COUNT = "payment:fake:charges:{}"
    #: Record the answer unless one is there (then return that one); count a successful charge.
    _RECORD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if ARGV[3] == '1' then redis.call('INCR', KEYS[2]) end
  return nil
end
return redis.call('GET', KEYS[1])
"""

    def charge(self, *, idempotency_key: str, amount: Decimal, card_number: str) -> ChargeResult:
        redis = get_redis()
        # One round trip: the earlier answer, if any, and this attempt's number.
        attempts_key = self._ATTEMPTS.format(idempotency_key)
        pipe = redis.pipeline(transaction=False)
        pipe.get(self._CHARGE.format(idempotency_key))
        pipe.incr(attempts_key)
        pipe.expire(attempts_key, 7 * 24 * 3600)
        earlier, attempt, _ = pipe.execute()
        if earlier is not None:
            return ChargeResult(**json.loads(earlier))
        if card_number == TIMES_OUT:
            raise ProviderTimeout("the card network did not answer")
        if card_number == DECLINED:
            result = ChargeResult(succeeded=False, decline_reason="card_declined")
        elif card_number == SUCCEEDS:
            result = self._success(idempotency_key)
        else:
            draw = self._random(idempotency_key, "outcome").random()
            if draw < settings.PAYMENT_FAKE_DECLINE_RATE:
                result = ChargeResult(succeeded=False, decline_reason="card_declined")
            else:
                result = self._success(idempotency_key)
        # Of two racing attempts with one key, the first answer is the answer (SET NX), and
        # only it counts a charge.
        first = script(redis, self._RECORD)(
            keys=[self._CHARGE.format(idempotency_key), self._COUNT.format(idempotency_key)],
            args=[json.dumps(result.__dict__), 30 * 24 * 3600, int(result.succeeded)],
        )
        if first is not None:
            return ChargeResult(**json.loads(first))
        if (
            card_number not in (SUCCEEDS, DECLINED)
            and self._random(idempotency_key, f"timeout:{attempt}").random() < settings.PAYMENT_FAKE_TIMEOUT_RATE
        ):
            raise ProviderTimeout("the card network's answer was lost")
        return result

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: Decimal) -> RefundResult:
        key = self._REFUND.format(idempotency_key)
        reference = f"fake_re_{uuid.uuid4().hex[:16]}"
        get_redis().set(key, reference, nx=True, ex=30 * 24 * 3600)
        return RefundResult(reference=get_redis().get(key).decode())

    @classmethod
    def charges_for(cls, idempotency_key: str) -> int:
        return int(get_redis().get(cls._COUNT.format(idempotency_key)) or 0)

    @classmethod
    def refunded(cls, idempotency_key: str) -> bool:
        return get_redis().exists(cls._REFUND.format(idempotency_key)) == 1

    def _success(self, idempotency_key: str) -> ChargeResult:
        return ChargeResult(succeeded=True, reference=f"fake_ch_{uuid.uuid4().hex[:16]}")

    def _random(self, idempotency_key: str, what: str) -> random.Random:
        seed = settings.PAYMENT_FAKE_SEED
        if not seed:
            return random.Random()
        return random.Random(hashlib.sha256(f"{seed}:{idempotency_key}:{what}".encode()).digest())


def get_provider() -> PaymentProvider:
    return import_string(settings.PAYMENT_PROVIDER)()
