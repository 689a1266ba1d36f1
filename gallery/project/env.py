"""Typed readers of environment variables, for the settings (``gallery.project.settings``).

Each returns the variable's value in the type the setting needs, or the default when the
variable is unset; a value that does not parse raises ``ImproperlyConfigured`` naming the
variable and saying what it should look like.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    """Return the variable ``name`` stripped of surrounding blanks, or ``default`` if unset."""
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    """Return the variable ``name`` as a boolean (1/true/yes/on, 0/false/no/off/empty).

    Raises ``ImproperlyConfigured`` for anything else.
    """
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off), not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Return the variable ``name`` as an integer of at least ``minimum``.

    Raises ``ImproperlyConfigured`` if it is not an integer or is below ``minimum``.
    """
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_path(name: str, default: Path) -> Path:
    """Return the variable ``name`` as an absolute path (``~`` expanded), or ``default`` if unset or empty."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Return the comma-separated variable ``name`` as a list of non-empty, stripped items."""
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_port(name: str, default: str) -> str:
    """Return the variable ``name`` as a TCP port string, or ``""`` (meaning: no port).

    Raises ``ImproperlyConfigured`` unless it is empty or an integer in 1..65535.
    """
    value = env_str(name, default)
    if value and not (value.isdigit() and 1 <= int(value) <= 65535):
        raise ImproperlyConfigured(f"{name} must be a TCP port (1-65535) or empty, not {value!r}")
    return value


def env_url(name: str, default: str) -> str:
    """Return the variable ``name`` as an http(s) URL without a trailing slash.

    Raises ``ImproperlyConfigured`` if the scheme is not http/https or the host is missing.
    """
    value = env_str(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL such as https://glasshouse.example, not {value!r}")
    return value


def env_rate(name: str, default: str) -> str:
    """Return the variable ``name`` as a django-ratelimit rate: ``<count>/<period>``, the period
    an optional number and s, m, h or d (``"5/h"``, ``"100/10m"``).

    Raises ``ImproperlyConfigured`` for anything else.
    """
    value = env_str(name, default)
    if not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 5/h (count per s, m, h or d, e.g. 100/10m), not {value!r}"
        )
    return value
