"""Accounts (django-allauth: publishers sign up and log in by email; the admin by username) and
the email that carries their links."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from gallery.project.env import env_bool, env_int, env_str
from gallery.project.settings.core import APP_URL

# --- Accounts (django-allauth) and email ------------------------------------------

AUTHENTICATION_BACKENDS = [
    # The admin's username login (operators, moderators).
    "django.contrib.auth.backends.ModelBackend",
    # Publishers log in by email.
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "gallery:mine"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
#: No login before the address is confirmed through the link allauth emails.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
#: Following the link in the browser that signed up logs in there (and claims the galleries
#: uploaded anonymously in that browser, gallery.views.mine.claim_session_galleries).
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Glasshouse] "
ACCOUNT_LOGOUT_REDIRECT_URL = "gallery:index"
#: Links in account emails (verification, password reset) use the scheme of APP_URL.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = urlsplit(APP_URL).scheme
_app_host = urlsplit(APP_URL).hostname

#: With EMAIL_HOST set, mail goes out by SMTP; without it, to the console (development).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "gallery.mail.ReadableConsoleBackend"  # links stay whole (no quoted-printable wrapping)
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
#: STARTTLS on EMAIL_PORT (587); set EMAIL_USE_SSL instead for implicit TLS (465).
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set only one of them to true")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Glasshouse <noreply@{_app_host or 'localhost'}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
