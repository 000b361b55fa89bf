"""Settings for this service's tests: its own Redis database and its own Kafka topics.

Each service's tests use a Redis database of their own (so flushing it touches no
one else) and a random topic prefix (so a running stack never sees test events).
"""

import os
import uuid

os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["KAFKA_TOPIC_PREFIX"] = f"test-member-{uuid.uuid4().hex[:8]}."
if os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = os.environ["TEST_KAFKA_BOOTSTRAP_SERVERS"]

from config.settings import *  # noqa: E402,F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False

# Argon2 still (the tests check the hash's shape), but with costs a test run can afford.
ARGON2_MEMORY_KIB = 1024
ARGON2_TIME_COST = 1
