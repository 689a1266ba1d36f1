"""Rate limits per client address: which address a request comes from, and the upload rate.

Behind a reverse proxy every request comes from the proxy's address, so the client's own
address is read from the header the proxy sets: ``CLIENT_IP_META_KEY`` names it as a
``request.META`` key (environment variable ``RATELIMIT_IP_META_KEY``; ``HTTP_X_REAL_IP``
with ``deploy/nginx/app.conf``). django-ratelimit's ``key="ip"`` calls ``client_ip``
(``RATELIMIT_IP_META_KEY`` in the settings is this module's ``client_ip``), so the limits and
the addresses recorded (hashed) agree. Without the setting only ``REMOTE_ADDR`` counts: a
header a client sends itself, such as ``X-Forwarded-For``, is ignored.
"""

from __future__ import annotations

import ipaddress
import re

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}

#: django-ratelimit group shared by the publish form and the new-version form: uploads per address.
UPLOAD_RATE_GROUP = "gallery.upload"
#: django-ratelimit group of the self-host zips the content origins serve (``gallery.content``), per address.
DOWNLOAD_RATE_GROUP = "gallery.download"


def _ip_address(value: str) -> str | None:
    """``value`` as a normalised IP address, or ``None`` if it is not one."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's IP address (a string such as ``"203.0.113.9"``), as the rate limits count it.

    With ``CLIENT_IP_META_KEY`` set, the address in that header: its right-most entry, which
    is the one the trusted proxy added (nginx's ``$proxy_add_x_forwarded_for`` appends the
    peer's address to whatever the client sent, so entries to its left are the client's own
    claims). If that header is missing or not an address, or without the setting,
    ``REMOTE_ADDR``; ``""`` if even that is unknown.
    """
    remote = _ip_address(str(request.META.get("REMOTE_ADDR") or "")) or ""
    key = settings.CLIENT_IP_META_KEY
    if not key or key == "REMOTE_ADDR":
        return remote
    forwarded = str(request.META.get(key) or "")
    return _ip_address(forwarded.rsplit(",", 1)[-1]) or remote


def describe_rate(rate: str) -> str:
    """Return a django-ratelimit rate in words: ``"10/h"`` -> ``"10 per hour"``, ``"5/10m"`` -> ``"5 per 10 minutes"``."""
    match = re.fullmatch(r"(\d+)/(\d*)([smhd])", rate.strip())
    if not match:
        return rate
    count, multiplier, unit = match.groups()
    if multiplier and multiplier != "1":
        return f"{count} per {multiplier} {_PERIODS[unit]}s"
    return f"{count} per {_PERIODS[unit]}"


def upload_rate(group: str, request: HttpRequest) -> str | None:
    """Rate for django-ratelimit: ``UPLOAD_RATE_LIMIT`` for people signed out; signed-in users are
    not limited (publishers' quotas apply instead)."""
    if request.user.is_authenticated:
        return None
    return settings.UPLOAD_RATE_LIMIT


def too_many_uploads_message() -> str:
    """The refusal of an upload over ``UPLOAD_RATE_LIMIT`` from one address."""
    return (
        f"Too many uploads from your address: the limit is {describe_rate(settings.UPLOAD_RATE_LIMIT)}. "
        "Try again later."
    )


#: django-ratelimit groups of a publisher's builds (rebuilds and new versions): per publisher and per address.
BUILD_RATE_GROUP = "gallery.build"
BUILD_ADDRESS_RATE_GROUP = "gallery.build.address"


def publisher_key(group: str, request: HttpRequest) -> str:
    """django-ratelimit key of the publisher: ``"user:<pk>"`` when signed in, else ``"ip:<client_ip>"``."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{client_ip(request)}"


def builds_limited(request: HttpRequest) -> bool:
    """Count one build the request asks for (a rebuild or a new version) and say whether it is over a limit.

    Two django-ratelimit counters, both incremented: ``BUILD_RATE_LIMIT`` per publisher
    (``publisher_key``) and ``BUILD_RATE_LIMIT_PER_ADDRESS`` per client address (``client_ip``),
    so neither many accounts from one address nor one account from many addresses gets more.
    """
    per_publisher = is_ratelimited(
        request, group=BUILD_RATE_GROUP, key=publisher_key, rate=settings.BUILD_RATE_LIMIT, increment=True
    )
    per_address = is_ratelimited(
        request, group=BUILD_ADDRESS_RATE_GROUP, key="ip", rate=settings.BUILD_RATE_LIMIT_PER_ADDRESS, increment=True
    )
    return per_publisher or per_address


def too_many_builds_message() -> str:
    """The refusal of a rebuild or new version over ``BUILD_RATE_LIMIT`` or ``BUILD_RATE_LIMIT_PER_ADDRESS``."""
    return (
        f"Too many builds started: the limit is {describe_rate(settings.BUILD_RATE_LIMIT)} per publisher and "
        f"{describe_rate(settings.BUILD_RATE_LIMIT_PER_ADDRESS)} per address. Nothing was started; try again later."
    )


def too_many_downloads_message(seconds_left: int) -> str:
    """The refusal of a download over ``DOWNLOAD_RATE_LIMIT`` from one address; ``seconds_left`` until the window ends (< 0: unknown)."""
    minutes = max(1, -(-seconds_left // 60))
    wait = f"in {minutes} minute{'' if minutes == 1 else 's'}" if seconds_left >= 0 else "later"
    return (
        f"Too many downloads from your address: the limit is {describe_rate(settings.DOWNLOAD_RATE_LIMIT)}. "
        f"Try again {wait}. The gallery itself keeps working in your browser meanwhile."
    )
