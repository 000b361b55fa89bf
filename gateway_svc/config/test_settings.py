"""Settings for this service's tests: its own Redis database and its own Kafka topics.

Each service's tests use a Redis database of their own (so flushing it touches no
one else) and a random topic prefix (so a running stack never sees test events).
"""

import os
import uuid

os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ["KAFKA_TOPIC_PREFIX"] = f"test-gateway-{uuid.uuid4().hex[:8]}."
if os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = os.environ["TEST_KAFKA_BOOTSTRAP_SERVERS"]

from config.settings import *  # noqa: E402,F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False

# The tests mint tokens as the member service does (shared.tokens.issue_access_token, through
# simplejwt, whose backend module brings Django's auth models); the gateway itself only checks them.
INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.contenttypes", "django.contrib.auth"]  # noqa: F405
