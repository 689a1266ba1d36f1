"""How Django serves the app origin: apps, middleware, the Content-Security-Policy and other
response headers, URLs, templates, static files, language and time zone."""

from __future__ import annotations

from django.utils.csp import CSP

from gallery.project.settings.core import CONTENT_DOMAIN, CONTENT_PORT, CONTENT_SCHEME

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Before allauth, so gallery/templates/allauth/ and account/ override its templates.
    "gallery.apps.GalleryConfig",
    "allauth",
    "allauth.account",
]

MIDDLEWARE = [
    # Before everything, gallery content origins included: every log line of a request names it.
    "gallery.logs.RequestIdMiddleware",
    # Then: requests for <gallery-id>.<CONTENT_DOMAIN> are answered here and never
    # reach the app's URLs, sessions, CSRF or X-Frame-Options (galleries are embeddable).
    "gallery.content.middleware.ContentOriginMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
]
X_FRAME_OPTIONS = "DENY"


def content_origins_source(scheme: str, domain: str, port: str) -> str:
    """The CSP source expression matching every gallery origin: ``<scheme>://*.<domain>[:<port>]``."""
    return f"{scheme}://*.{domain}" + (f":{port}" if port else "")


def app_csp(content_origins: str) -> dict[str, list[str]]:
    """The app origin's Content-Security-Policy (``SECURE_CSP``), given ``content_origins_source(...)``.

    Scripts and styles come from the app's own static files, or carry the request's nonce
    (``{{ csp_nonce }}``): no inline script, style element or attribute, or ``on*=`` handler runs
    without it. Images may come from gallery origins (share cards) and ``data:`` URLs (the
    admin's icons); frames only from gallery origins (the embed panel's preview). The app may not
    be framed at all, nor post forms or resolve relative URLs anywhere else.
    """
    return {
        "default-src": [CSP.SELF],
        "script-src": [CSP.SELF, CSP.NONCE],
        "style-src": [CSP.SELF, CSP.NONCE],
        "img-src": [CSP.SELF, "data:", content_origins],
        "frame-src": [content_origins],
        "connect-src": [CSP.SELF],
        "object-src": [CSP.NONE],
        "base-uri": [CSP.NONE],
        "form-action": [CSP.SELF],
        "frame-ancestors": [CSP.NONE],
    }


#: The app origin's policy; galleries are answered before this middleware (gallery.content).
SECURE_CSP = app_csp(content_origins_source(CONTENT_SCHEME, CONTENT_DOMAIN, CONTENT_PORT))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
#: A page the app opens in another window (a gallery, a preview) gets no handle on the app's window.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
#: Powerful browser features the app never uses, off for its pages and every frame in them
#: (django-permissions-policy). The clipboard stays: the embed panel's "Copy" buttons write to it.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    name: []
    for name in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

ROOT_URLCONF = "gallery.project.urls"
WSGI_APPLICATION = "gallery.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # {{ csp_nonce }}: the nonce of this response's Content-Security-Policy.
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Static files (admin CSS), served by WhiteNoise under gunicorn ----------------

STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# A bare checkout serves the admin's CSS without `collectstatic`.
WHITENOISE_USE_FINDERS = True

# --- Misc -----------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
