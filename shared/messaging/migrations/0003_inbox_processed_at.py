from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the inbox's writes: a consumer keeps applying events meanwhile.
    atomic = False

    dependencies = [("messaging", "0002_brokerepoch")]

    operations = [
        AddIndexConcurrently(
            model_name="processedevent",
            index=models.Index(fields=["processed_at"], name="inbox_processed_at"),
        ),
    ]
