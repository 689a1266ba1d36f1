"""The people of the tests: the chain's users (``publisher``, ``moderator``, ``stranger``), a
factory for more (``make_user``), and how fast their passwords hash.

Every user here has the username given, the address ``<username>@example.org`` and the password
``PASSWORD`` (a test that signs in through a form imports it). The chain goes on in
``tests.plugins.galleries``: ``owned_gallery`` is the ``publisher``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: The password of every user ``make_user`` makes: long enough for Django's validators, so a
#: test may also sign up with it.
PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., Any]:
    """``make_user(username, *, verified=False, staff=False, moderator=False) -> User``: a new account.

    Email ``<username>@example.org``, password ``PASSWORD``. ``verified``: the address is verified
    and primary (allauth lets the user sign in); ``staff``: ``is_staff``; ``moderator``: staff in
    the Moderators group (``gallery.models.MODERATORS_GROUP``), which may review builds but is no
    superuser. Needs database access (through ``django_user_model``).
    """

    def make(username: str, *, verified: bool = False, staff: bool = False, moderator: bool = False) -> Any:
        from allauth.account.models import EmailAddress
        from django.contrib.auth.models import Group

        from gallery.models import MODERATORS_GROUP

        user = django_user_model.objects.create_user(
            username=username, email=f"{username}@example.org", password=PASSWORD, is_staff=staff or moderator
        )
        if verified:
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        if moderator:
            user.groups.add(Group.objects.get(name=MODERATORS_GROUP))
        return user

    return make


@pytest.fixture
def publisher(make_user: Callable[..., Any]) -> Any:
    """``ada``: a publisher whose address is verified (allauth lets her sign in), neither trusted nor staff."""
    return make_user("ada", verified=True)


@pytest.fixture
def moderator(make_user: Callable[..., Any]) -> Any:
    """``mod``: a staff user in the Moderators group (``gallery.apps.ensure_moderators_group``), not a superuser."""
    return make_user("mod", moderator=True)


@pytest.fixture
def stranger(make_user: Callable[..., Any]) -> Any:
    """``mallory``: a signed-up user with no gallery, no role and no claim on anyone's gallery."""
    return make_user("mallory")


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
