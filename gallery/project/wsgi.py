"""WSGI entry point for gunicorn: ``gunicorn gallery.project.wsgi:application``.

One process serves both the app origin and, in development, every content origin
(``<gallery-id>.<CONTENT_DOMAIN>``, see ``gallery.content``).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.project.settings")

application = get_wsgi_application()
