"""Django settings for Glasshouse, read from the environment (``DJANGO_SETTINGS_MODULE=gallery.project.settings``).

A bare checkout runs with no variables set: everything lives under the data
folder (``GLASSHOUSE_DATA_DIR``, default ``<repo>/var``), with a SQLite database,
a filesystem Celery broker and local-folder storage. Production sets
``DATABASE_URL``, ``REDIS_URL``, ``S3_BUCKET`` and friends (see DESIGN.md,
"Configuration"). Every variable is read through the small typed helpers of
``gallery.project.env``; a value that does not parse raises ``ImproperlyConfigured``
naming the variable.

These modules only read: they create no folder or file and start nothing. What a process does
with these values at start-up (the data folders, the generated secret key, Sentry) is in
``gallery.project.startup``, run by ``GalleryConfig.ready``.

One module per concern, gathered here; each setting is defined in exactly one of them, and a
module that needs another's value imports it by name (``servers`` reads ``core`` and ``builds``):

- ``core``: the data folder, the secret key, the app's hosts and the content domain, cookies, HTTPS;
- ``web``: apps, middleware, security headers (CSP, Permissions-Policy), URLs, templates, static files;
- ``builds``: build time limits, retries and sweeps, the Pyodide runtime, the database check;
- ``servers``: the database, the cache, the Celery broker, the bundle store (local or S3);
- ``limits``: uploads, rate limits, publishers' quotas, previews, reports, downloads, view counts;
- ``accounts``: django-allauth and email;
- ``operations``: logging, the health check, Sentry.
"""

from gallery.project.settings.accounts import *
from gallery.project.settings.builds import *
from gallery.project.settings.core import *
from gallery.project.settings.limits import *
from gallery.project.settings.operations import *
from gallery.project.settings.servers import *
from gallery.project.settings.web import *
