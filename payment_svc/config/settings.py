"""Settings of the payment service: the shared ones, plus what is its own."""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(service_settings("payment", base_dir=BASE_DIR, apps=["payments"]))
