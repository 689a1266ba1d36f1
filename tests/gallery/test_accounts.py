"""Publishers' accounts (django-allauth): sign up, verify the email address, log in and out, reset a password.

Emails are read from Django's test outbox (pytest-django switches to the locmem backend).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db

EMAIL = "ada@example.org"
PASSWORD = "correct horse battery staple"
LINK = re.compile(r"https?://testserver(/accounts/[^\s]+)")


def _link_in(message: mail.EmailMessage) -> str:
    """The path of the only account link in ``message``'s body."""
    (path,) = LINK.findall(message.body)
    return path


def _sign_up(client, email: str = EMAIL, password: str = PASSWORD):
    return client.post(
        reverse("account_signup"), {"email": email, "password1": password, "password2": password}
    )


def _log_in(client, email: str = EMAIL, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def _is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_signing_up_sends_a_verification_email_and_logs_in_only_after_it(client):
    response = _sign_up(client)
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert not _is_logged_in(client)
    (message,) = mail.outbox
    assert message.to == [EMAIL]
    assert message.subject.startswith("[Glasshouse] ")

    # Mandatory verification: the password alone does not let them in.
    client.cookies.clear()
    response = _log_in(client)
    assert not _is_logged_in(client)
    assert response.url == reverse("account_email_verification_sent")

    confirm = _link_in(message)
    assert "Confirm" in client.get(confirm).content.decode()
    client.post(confirm)
    response = _log_in(client)
    assert response.status_code == 302
    assert _is_logged_in(client)
    assert get_user_model().objects.get(email=EMAIL).emailaddress_set.get().verified


def test_a_forged_verification_link_verifies_nothing(client):
    _sign_up(client)
    client.post(reverse("account_confirm_email", args=["not-a-real-key"]))
    client.cookies.clear()
    _log_in(client)
    assert not _is_logged_in(client)


@pytest.fixture
def verified_user(client):
    """A publisher who signed up and followed the verification link; logged out."""
    _sign_up(client)
    client.post(_link_in(mail.outbox[0]))
    client.logout()
    mail.outbox.clear()
    return get_user_model().objects.get(email=EMAIL)


def test_logging_out_takes_a_post_and_the_nav_follows(client, verified_user):
    nav = client.get(reverse("gallery:index")).content.decode()
    assert reverse("account_login") in nav and reverse("account_signup") in nav
    _log_in(client)
    nav = client.get(reverse("gallery:index")).content.decode()
    assert "Log out" in nav and reverse("account_signup") not in nav
    client.post(reverse("account_logout"))
    assert not _is_logged_in(client)


def test_a_wrong_password_is_refused_with_a_message(client, verified_user):
    response = _log_in(client, password="not my password")
    assert response.status_code == 200
    assert not _is_logged_in(client)
    assert "not correct" in response.content.decode()


def test_a_password_reset_link_sets_a_new_password(client, verified_user):
    response = client.post(reverse("account_reset_password"), {"email": EMAIL})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == [EMAIL]
    # The link redirects once to a key-less URL that keeps the key in the session.
    form = client.get(_link_in(message), follow=True)
    form_path = form.redirect_chain[-1][0] if form.redirect_chain else _link_in(message)
    new_password = "a brand new passphrase 42"
    response = client.post(form_path, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    client.logout()
    _log_in(client)
    assert not _is_logged_in(client)
    _log_in(client, password=new_password)
    assert _is_logged_in(client)


def test_a_reset_for_an_unknown_address_sends_no_link(client, db):
    client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert all("password/reset/key" not in message.body for message in mail.outbox)


@pytest.mark.parametrize("name", ["account_login", "account_signup", "account_reset_password"])
def test_account_pages_use_the_glasshouse_layout(client, db, name):
    page = client.get(reverse(name)).content.decode()
    assert 'class="brand"' in page
    assert "· Glasshouse</title>" in page
