"""Settings of the catalog service: the shared ones, plus what is its own."""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# The cache holds whole answers only: an outage costs the full answer, never an error.
globals().update(service_settings("catalog", base_dir=BASE_DIR, apps=["catalog"], cache_outage_is_a_miss=True))

# How long a cached page or detail may live; any cloth or stock change invalidates them at once.
CATALOG_CACHE_SECONDS = env.int("CATALOG_CACHE_SECONDS", default=30)
# How many cached answers each catalog process also keeps in its memory (0 = only Redis).
CATALOG_LOCAL_CACHE_ENTRIES = env.int("CATALOG_LOCAL_CACHE_ENTRIES", default=512)
