"""ASGI entry point: ``uvicorn sample_site.asgi:application``.

Static files (the admin's CSS) are served by Django's staticfiles handler,
as ``runserver`` does; a production site puts a real static server in front.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

application = ASGIStaticFilesHandler(get_asgi_application())
