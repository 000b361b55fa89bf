from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="BrokerEpoch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("epoch", models.CharField(max_length=64, unique=True)),
                ("first_seen_at", models.DateTimeField()),
                ("last_seen_at", models.DateTimeField()),
                (
                    "replayed",
                    models.PositiveIntegerField(default=0, help_text="events published again when this broker was found"),
                ),
            ],
            options={"ordering": ["-id"]},
        ),
    ]
