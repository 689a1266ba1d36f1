"""Fixtures shared by every Glasshouse test: real browser, real S3 API, real Celery worker.

The suite talks to real servers wherever a user would (DESIGN.md, "Configuration"). The shared
fixtures and hooks live in pytest plugins, one module per concern, registered here:

- ``tests.plugins.suite``: markers, which tests are heavy (``make test-fast`` leaves them out),
  file order, and each pytest-xdist process's own Redis database;
- ``tests.plugins.data``: the repository, the team's sample databases (``shared_data``), a fresh
  data folder (``glasshouse_data_dir``), small SQLite files, the plugin database, the corpus;
- ``tests.plugins.users`` and ``tests.plugins.galleries``: the chain of fixtures most tests start
  from: ``publisher``, ``moderator``, ``stranger`` (``make_user`` for more), then ``gallery``
  (no owner), ``owned_gallery`` (the publisher's) and ``build`` (its live build); and fast
  password hashing;
- ``tests.plugins.browsers``: Debian's Chromium, driven by Playwright (``chromium_path``,
  ``browser``, ``partitioned_browser``, ``page``);
- ``tests.plugins.webkit``: WebKitGTK (Safari's engine family) under Xvfb, driven by Selenium
  through Debian's WebKitWebDriver (``xvfb_display``, ``webkit_webdriver``, ``webkit_session``, ``webkit``);
- ``tests.plugins.firefox``: Debian's Firefox ESR, driven over WebDriver BiDi by puppeteer-core (``firefox``);
- ``tests.plugins.servers``: pytest-django's ``live_server`` as the app origin and, through
  ``<id>.localhost``, every gallery's content origin (``live_gallery_server``); moto's S3 server
  as a separate process, reached by boto3 over HTTP (``moto_s3``, ``s3_bucket``, ``private_s3``);
  a Redis of a test's own (``private_redis``);
- ``tests.plugins.workers``: real ``celery worker`` processes (``celery_worker_factory``,
  ``celery_worker``), with PostgreSQL (``DATABASE_URL``) and Redis (``REDIS_URL``) as
  ``make test`` sets them;
- ``tests.plugins.builds``: real builds shared by the session (``prebuilt_bundle``) and the
  public galleries made of them (``published_gallery``, ``lasting_gallery``).

Helpers that are not fixtures live in ``tests/support/`` (``from tests.support.nginx import ...``).
``make test`` installs Chromium, WebKitGTK's driver and Xvfb, Firefox ESR and puppeteer-core, starts PostgreSQL and Redis, and sets the variables.
Fixtures that need something missing fail with a message saying what to run; none skip.
"""

import os

# Brotli quality 9 for the runtime's shared copies, not production's 11 (builder.brotli_copies.
# shared_quality): a fresh test machine compresses them in about 3 s of CPU instead of about 60.
# Set before any builder module is imported; Celery workers and other processes the tests start
# inherit it. The copies decode to the same bytes; only their size differs (make bench measures 11).
os.environ.setdefault("SHARED_BROTLI_QUALITY", "9")

# suite first: under xdist it moves the settings read from REDIS_URL before anything connects.
pytest_plugins = [
    "tests.plugins.suite",
    "tests.plugins.data",
    "tests.plugins.users",
    "tests.plugins.galleries",
    "tests.plugins.browsers",
    "tests.plugins.webkit",
    "tests.plugins.firefox",
    "tests.plugins.servers",
    "tests.plugins.workers",
    "tests.plugins.builds",
]
