"""The data folder, the secret key and the hosts: the app origin (``APP_URL``, ``APP_HOSTS``)
and the gallery content domain (``CONTENT_DOMAIN``), with the cookie and HTTPS rules that keep
them apart (README, "Security model")."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from gallery.project.env import env_bool, env_int, env_list, env_path, env_port, env_str, env_url
from gallery.sites import registrable_domain, same_site

#: The repository (this file is gallery/project/settings/core.py).
BASE_DIR = Path(__file__).resolve().parents[3]

# --- Data folder --------------------------------------------------------------

DATA_DIR = env_path("GLASSHOUSE_DATA_DIR", BASE_DIR / "var")
BROKER_QUEUE_DIR = DATA_DIR / "broker" / "queue"
BROKER_PROCESSED_DIR = DATA_DIR / "broker" / "processed"
BROKER_CONTROL_DIR = DATA_DIR / "broker" / "control"
#: Where Django spools uploads while they arrive; on the data disk, not a small /tmp.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
STATIC_ROOT = DATA_DIR / "static"
# Each process creates these folders at start-up (gallery.project.startup.create_data_folders).

# --- Core ---------------------------------------------------------------------

#: Empty (unset): every process takes the key in ``<data>/secret_key`` at start-up, which the first
#: one to start creates (mode 0600; gallery.project.startup), so all processes sharing the data folder agree.
SECRET_KEY = env_str("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)

PORT = env_port("PORT", "8000")
CONTENT_DOMAIN = env_str("CONTENT_DOMAIN", "localhost").lower().strip(".")
if not CONTENT_DOMAIN:
    raise ImproperlyConfigured("CONTENT_DOMAIN must be a domain name such as glasshouse-content.example")
CONTENT_SCHEME = env_str("CONTENT_SCHEME", "http")
if CONTENT_SCHEME not in ("http", "https"):
    raise ImproperlyConfigured(f"CONTENT_SCHEME must be http or https, not {CONTENT_SCHEME!r}")
#: Port shown in gallery URLs; "" means none (standard port behind nginx).
CONTENT_PORT = env_port("CONTENT_PORT", PORT)
APP_URL = env_url("APP_URL", f"http://127.0.0.1:{PORT or '8000'}")
APP_HOSTS = env_list("APP_HOSTS")

ALLOWED_HOSTS = ["127.0.0.1", "localhost", f".{CONTENT_DOMAIN}", *APP_HOSTS]
_app_host = urlsplit(APP_URL).hostname
# A gallery must never be the same site as the app: a script in a gallery could otherwise set
# cookies for the app (Domain=<registrable domain>), clear them (Clear-Site-Data), and its
# requests to the app would count as same-site (SameSite=Lax cookies sent). Gallery ids are
# random labels; "x" stands for any of them.
for _host in filter(None, [_app_host, *APP_HOSTS]):
    if same_site(_host, f"x.{CONTENT_DOMAIN}"):
        raise ImproperlyConfigured(
            f"CONTENT_DOMAIN ({CONTENT_DOMAIN}) is on the same registrable domain "
            f"({registrable_domain(_host)}) as the app host {_host} (APP_URL or APP_HOSTS): galleries "
            "could read, set and clear the app's cookies. Serve galleries from a domain of their own, "
            "such as glasshouse-content.org beside glasshouse.org (README, 'Security model')."
        )
    # The content domain and its subdomains are answered by gallery.content, never by the app.
    _name = _host.lower().rstrip(".")
    if _name == CONTENT_DOMAIN or _name.endswith(f".{CONTENT_DOMAIN}"):
        raise ImproperlyConfigured(
            f"The app host {_host} (APP_URL or APP_HOSTS) is "
            + ("CONTENT_DOMAIN itself" if _name == CONTENT_DOMAIN else f"under CONTENT_DOMAIN ({CONTENT_DOMAIN})")
            + ", where only galleries are served: the app would answer 404 there. Serve the app from another "
            "host, such as 127.0.0.1 in development (the default APP_URL) or glasshouse.org beside "
            "glasshouse-content.org."
        )
if _app_host and _app_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_app_host)
CSRF_TRUSTED_ORIGINS = [APP_URL]

# App cookies (session, CSRF) are host-only: no Domain attribute, so no other host (a gallery
# least of all) ever receives them. SameSite=Lax; the session cookie is out of scripts' reach.
SESSION_COOKIE_DOMAIN = None
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True

if APP_URL.startswith("https://"):
    # Behind nginx, which terminates TLS and sets X-Forwarded-Proto (deploy/).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    #: A load balancer's health probe may speak plain HTTP to gunicorn.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    #: Seconds browsers keep to https for the app's host (HSTS); a year by default, 0 turns it off.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    #: Subdomains of the app's host too (galleries live on a domain of their own, CONTENT_DOMAIN).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    #: Adds "preload" (consent to browsers' preload lists; submitting the domain is a separate step).
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
