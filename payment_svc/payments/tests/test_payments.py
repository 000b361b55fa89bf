"""POST /payment and PUT /payment/{order_id}: amounts from the server, one charge per order."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from payments import services
from payments.models import Payment, PaymentStatus
from payments.providers import DECLINED, SUCCEEDS, TIMES_OUT, FakeProvider
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _open(client, order_id: int = 1, **extra):
    return client.post("/payment", {"order_id": order_id, **extra}, format="json")


def _pay(client, order_id: int = 1, card: str = SUCCEEDS):
    return client.put(f"/payment/{order_id}", {"card_number": card}, format="json")


def test_open_payment_takes_the_amount_from_the_order(member_client, orders):
    resp = _open(member_client(1), amount="1.00")
    assert resp.status_code == 201
    body = resp.json()
    assert body["order_id"] == 1 and body["amount"] == "59000.00" and body["status"] == "PENDING"
    assert str(Payment.objects.get().amount) == "59000.00"


def test_open_payment_twice_returns_the_open_one(member_client, orders):
    first, second = _open(member_client(1)), _open(member_client(1))
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["payment_id"] == second.json()["payment_id"] and Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # as in the service: no transaction around the request
def test_an_open_that_loses_the_race_answers_with_the_payment_that_won(member_client, orders, monkeypatch):
    first = _open(member_client(1)).json()
    current = services._current
    calls = []

    def missed_the_first(**kw):  # the racing request read before the winner committed
        calls.append(kw)
        return None if len(calls) == 1 else current(**kw)

    monkeypatch.setattr(services, "_current", missed_the_first)
    second = _open(member_client(1))
    assert second.status_code == 200 and second.json() == first
    assert Payment.objects.count() == 1 and len(calls) == 2


@pytest.mark.django_db(transaction=True)  # as in the service: no transaction around the request
def test_opening_a_payment_is_one_insert_that_commits_itself(member_client, orders, monkeypatch):
    """A transaction around the one INSERT is a BEGIN and a COMMIT more per payment: two round trips."""
    autocommit = []
    real_insert = services.insert

    def spied(objs):
        autocommit.append(connection.get_autocommit())
        return real_insert(objs)

    monkeypatch.setattr(services, "insert", spied)
    assert _open(member_client(1)).status_code == 201
    assert autocommit == [True] and Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # as in the service: no transaction around the request
def test_a_charge_writes_the_payment_and_its_event_in_one_statement(member_client, orders):
    """The payment's outcome and PaymentCompleted: one round trip, inside the charge's transaction."""
    assert _open(member_client(1)).status_code == 201
    with CaptureQueriesContext(connection) as captured:
        assert _pay(member_client(1)).status_code == 200
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert statements == ["BEGIN", "SELECT", "WITH", "COMMIT"], captured.captured_queries
    assert Payment.objects.get().status == PaymentStatus.COMPLETED
    assert OutboxEvent.objects.filter(event_type="PaymentCompleted").count() == 1


def test_another_members_order_is_not_found(member_client, orders):
    assert _open(member_client(2)).status_code == 404
    assert _open(member_client(1), 999).status_code == 404
    assert not Payment.objects.exists()


@pytest.mark.parametrize("status", ["PAID", "CANCELLED", "EXPIRED", "PAYMENT_FAILED", "REFUNDED"])
def test_open_payment_for_an_order_not_awaiting_payment_is_refused(member_client, orders, status):
    orders.add(2, status=status)
    resp = _open(member_client(1), 2)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "illegal_transition"


def test_open_payment_past_the_deadline_is_refused(member_client, orders):
    orders.add(2, deadline_in=-1)
    assert _open(member_client(1), 2).status_code == 409


@pytest.mark.parametrize("body", [{}, {"order_id": "one"}, {"order_id": -3}])
def test_open_payment_bad_input_names_the_field(member_client, orders, body):
    resp = member_client(1).post("/payment", body, format="json")
    assert resp.status_code == 400 and "order_id" in resp.json()["error"]["fields"]


def test_without_identity_payment_is_refused(anon_client, orders):
    assert _open(anon_client).status_code == 401


def test_payment_completes_once_and_announces_it(member_client, orders):
    payment_id = _open(member_client(1)).json()["payment_id"]
    resp = _pay(member_client(1))
    assert resp.status_code == 200
    assert resp.json() == {"payment_id": payment_id, "order_id": 1, "amount": "59000.00", "status": "COMPLETED"}
    again = _pay(member_client(1))
    assert again.status_code == 200 and again.json() == resp.json()
    payment = Payment.objects.get()
    assert payment.attempts == 1 and payment.provider_reference and payment.card_last4 == "4242"
    assert FakeProvider.charges_for(payment.idempotency_key) == 1
    (event,) = OutboxEvent.objects.filter(event_type="PaymentCompleted")
    assert event.topic == "payments" and event.aggregate_id == str(payment_id)
    assert event.payload == {"payment_id": payment_id, "order_id": 1, "member_id": 1, "amount": "59000.00"}


def test_completing_reads_the_payment_once_locked_and_writes_only_what_the_charge_changed(member_client, orders):
    _open(member_client(1))
    with CaptureQueriesContext(connection) as queries:
        assert _pay(member_client(1)).status_code == 200
    reads = [q["sql"] for q in queries if 'FROM "payments_payment"' in q["sql"]]
    assert len(reads) == 1 and reads[0].endswith("FOR UPDATE")
    (statement,) = [q["sql"] for q in queries if 'UPDATE "payments_payment"' in q["sql"]]
    assignments = statement.partition('UPDATE "payments_payment" SET ')[2].partition(" WHERE ")[0]
    assert '"status"' in assignments and '"amount"' not in assignments and '"idempotency_key"' not in assignments


def test_declined_card_fails_the_payment(member_client, orders):
    _open(member_client(1))
    resp = _pay(member_client(1), card=DECLINED)
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "payment_declined"
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.FAILED and payment.failure_reason == "card_declined"
    (event,) = OutboxEvent.objects.filter(event_type="PaymentFailed")
    assert event.payload["reason"] == "card_declined" and event.payload["order_id"] == 1
    assert not OutboxEvent.objects.filter(event_type="PaymentCompleted").exists()
    # the failed payment is not charged by a retry
    assert _pay(member_client(1)).status_code == 409


def test_timeout_keeps_the_payment_pending_and_the_retry_charges_once(member_client, orders):
    _open(member_client(1))
    resp = _pay(member_client(1), card=TIMES_OUT)
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "upstream_timeout"
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING and payment.attempts == 1
    assert not OutboxEvent.objects.exists()
    assert _pay(member_client(1)).status_code == 200
    payment.refresh_from_db()
    assert payment.attempts == 2 and FakeProvider.charges_for(payment.idempotency_key) == 1


def test_lost_answer_after_a_charge_is_found_by_the_retry_not_charged_again(member_client, orders, settings):
    settings.PAYMENT_FAKE_TIMEOUT_RATE = 1.0
    _open(member_client(1))
    assert _pay(member_client(1), card="5555555555554444").status_code == 504
    settings.PAYMENT_FAKE_TIMEOUT_RATE = 0.0
    assert _pay(member_client(1), card="5555555555554444").status_code == 200
    assert FakeProvider.charges_for(Payment.objects.get().idempotency_key) == 1


def test_of_two_racing_charges_with_one_key_the_first_answer_stands_and_counts_once(redis_db, monkeypatch):
    provider = FakeProvider()
    first = provider.charge(idempotency_key="race", amount=1, card_number=SUCCEEDS)
    # The second attempt read no answer (the first had not recorded it yet), then charges.
    real_pipeline = redis_db.__class__.pipeline

    def pipeline_reading_nothing(self, *args, **kwargs):
        pipe = real_pipeline(self, *args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda: [None, *execute()[1:]]
        return pipe

    monkeypatch.setattr(redis_db.__class__, "pipeline", pipeline_reading_nothing)
    second = provider.charge(idempotency_key="race", amount=1, card_number=SUCCEEDS)
    assert second == first
    assert FakeProvider.charges_for("race") == 1


def test_configured_decline_rate_is_deterministic_with_a_seed(settings, redis_db):
    settings.PAYMENT_FAKE_SEED = "load-1"
    settings.PAYMENT_FAKE_DECLINE_RATE = 0.5
    outcomes = [
        FakeProvider().charge(idempotency_key=f"k{i}", amount=1, card_number="5555555555554444").succeeded
        for i in range(40)
    ]
    redis_db.flushdb()
    again = [
        FakeProvider().charge(idempotency_key=f"k{i}", amount=1, card_number="5555555555554444").succeeded
        for i in range(40)
    ]
    assert outcomes == again and 5 < outcomes.count(False) < 35


@pytest.mark.parametrize("card", ["4242-4242-4242-424x", "12345", "4" * 20, "", "४२४२४२४२४२४२४२४२"])
def test_bad_card_number_names_the_field_and_charges_nothing(member_client, orders, card):
    _open(member_client(1))
    resp = _pay(member_client(1), card=card)
    assert resp.status_code == 400 and "card_number" in resp.json()["error"]["fields"]
    assert Payment.objects.get().attempts == 0


def test_pay_without_an_open_payment_is_404(member_client, orders):
    assert _pay(member_client(1)).status_code == 404


def test_another_member_cannot_complete_my_payment(member_client, orders):
    _open(member_client(1))
    assert _pay(member_client(2)).status_code == 404
    assert Payment.objects.get().status == PaymentStatus.PENDING


@pytest.mark.parametrize("status", ["EXPIRED", "CANCELLED"])
def test_order_ended_meanwhile_is_not_charged(member_client, orders, status):
    _open(member_client(1))
    orders.orders[1]["status"] = status
    resp = _pay(member_client(1))
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "illegal_transition"
    payment = Payment.objects.get()
    assert payment.attempts == 0 and FakeProvider.charges_for(payment.idempotency_key) == 0


def test_order_past_its_deadline_is_not_charged(member_client, orders):
    _open(member_client(1))
    orders.add(1, deadline_in=-1)
    assert _pay(member_client(1)).status_code == 409
    assert Payment.objects.get().attempts == 0


def test_the_order_is_held_for_the_payment_before_it_is_charged(member_client, orders):
    payment_id = _open(member_client(1)).json()["payment_id"]
    reads = orders.calls
    assert _pay(member_client(1)).status_code == 200
    assert orders.holds == [(1, payment_id)]
    # the hold checks the order (its state, its deadline) under its lock: no read before it
    assert orders.calls == reads


def test_an_order_cancelled_while_the_payment_starts_is_not_charged(member_client, orders):
    _open(member_client(1))
    orders.changed_before_hold[1] = "CANCELLED"  # the cancel won the order's lock first
    r = _pay(member_client(1))
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING and payment.attempts == 0
    assert FakeProvider.charges_for(payment.idempotency_key) == 0
    assert not OutboxEvent.objects.filter(event_type="PaymentCompleted").exists()


def test_database_refuses_a_second_charge_for_one_order(db):
    Payment.objects.create(order_id=5, member_id=1, amount="1.00", provider="fake", status=PaymentStatus.COMPLETED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(order_id=5, member_id=1, amount="1.00", provider="fake", status=PaymentStatus.REFUNDED)


@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_charge_once(member_client, orders):
    _open(member_client(1))
    answers: list[int] = []
    start = threading.Barrier(4)

    def pay():
        start.wait()
        try:
            answers.append(_pay(member_client(1)).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payment = Payment.objects.get()
    assert answers == [200] * 4 and payment.attempts == 1
    assert FakeProvider.charges_for(payment.idempotency_key) == 1
    assert OutboxEvent.objects.filter(event_type="PaymentCompleted").count() == 1


def test_admin_lists_payments_by_state(member_client, orders, admin_client):
    _open(member_client(1))
    _pay(member_client(1))
    page = admin_client.get("/admin/payments/payment/?status__exact=COMPLETED").content.decode()
    assert Payment.objects.get().provider_reference in page
    assert admin_client.get("/admin/payments/payment/?q=abc").status_code == 200


def test_after_a_decline_no_new_payment_opens_for_the_order(member_client, orders):
    _open(member_client(1))
    assert _pay(member_client(1), card=DECLINED).status_code == 402
    resp = _open(member_client(1))
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "illegal_transition"
    assert Payment.objects.count() == 1


def test_charged_payments_lists_the_completed_ones_of_a_window(member_client, orders, internal_client, anon_client):
    import datetime as dt

    from django.utils import timezone

    orders.add(2)
    _open(member_client(1), 1)
    _pay(member_client(1), 1)
    _open(member_client(1), 2)
    _pay(member_client(1), 2, DECLINED)
    now = timezone.now()
    window = {
        "since": (now - dt.timedelta(minutes=1)).isoformat(),
        "until": (now + dt.timedelta(minutes=1)).isoformat(),
    }
    r = internal_client.post("/internal/payments/charged", window, format="json")
    assert r.status_code == 200
    assert [(p["order_id"], p["amount"]) for p in r.json()["payments"]] == [(1, "59000.00")]
    past = {"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
    assert internal_client.post("/internal/payments/charged", past, format="json").json() == {"payments": []}
    r = internal_client.post("/internal/payments/charged", {"since": "yesterday"}, format="json")
    assert r.status_code == 400 and {"since", "until"} <= set(r.json()["error"]["fields"])
    assert anon_client.post("/internal/payments/charged", window, format="json").status_code == 404
