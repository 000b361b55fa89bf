"""The payment that paid an order, and the payments an order sent back, as columns.

Until now both were read from the transitions' text (actor "payment:<id>", cause
"refund:<reason>"); this copies what that text says for the orders written before.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def from_the_transitions(apps, schema_editor):
    order_model = apps.get_model("orders", "Order")
    transition_model = apps.get_model("orders", "OrderTransition")
    sent_back_model = apps.get_model("orders", "PaymentSentBack")
    paid = transition_model.objects.filter(to_status="PAID", actor__startswith="payment:")
    for order_id, actor in paid.values_list("order_id", "actor").iterator():
        order_model.objects.filter(order_id=order_id).update(paid_by_payment_id=int(actor.split(":", 1)[1]))
    sent_back = transition_model.objects.filter(
        cause__in=["refund:late_payment", "refund:duplicate_payment"], actor__startswith="payment:"
    ).order_by("id")
    seen: set[int] = set()
    rows = []
    for order_id, cause, actor, event_id, at in sent_back.values_list("order_id", "cause", "actor", "event_id", "at"):
        payment_id = int(actor.split(":", 1)[1])
        if payment_id not in seen:
            seen.add(payment_id)
            rows.append(
                sent_back_model(
                    order_id=order_id, payment_id=payment_id, reason=cause.split(":", 1)[1], event_id=event_id, at=at
                )
            )
    sent_back_model.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0002_order_payment_hold'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='paid_by_payment_id',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='PaymentSentBack',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('payment_id', models.BigIntegerField()),
                ('reason', models.CharField(max_length=32)),
                ('event_id', models.UUIDField(blank=True, null=True)),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('order', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='payments_sent_back', to='orders.order')),
            ],
            options={
                'ordering': ['id'],
                'constraints': [models.UniqueConstraint(fields=('payment_id',), name='payment_sent_back_once')],
            },
        ),
        migrations.RunPython(from_the_transitions, migrations.RunPython.noop),
    ]
