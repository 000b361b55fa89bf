import os

from shared.wsgi import loaded_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = loaded_application()
