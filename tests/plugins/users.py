"""The people of the tests: publishers, moderators and strangers, and how fast their passwords hash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Hash the tests' passwords with MD5 first: the production hasher (PBKDF2, 1.2 million rounds)
    takes 0.5-4 s a hash on this machine, and the suite makes and checks hundreds of them.

    Only the test process (its ``client`` and ``live_server``) makes and checks these hashes.
    The production hashers stay in the list after it, so a hash any of them made still checks.
    """
    from django.conf import settings
    from django.test.utils import override_settings

    override = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    )
    override.enable()
    try:
        yield
    finally:
        override.disable()
