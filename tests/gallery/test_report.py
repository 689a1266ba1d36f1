"""Reports from readers: the form on the app origin, its rate limit and CSRF, and the automatic takedown.

The footer link that leads here and ``/_report`` on the content origin are tested in
``tests/builder/test_compat.py`` and ``test_content_origin.py``; the whole path in Chromium in
``tests/e2e/test_report_in_browser.py``.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from gallery.forms import hold_reasons_help
from gallery.models import AuditEvent, Build, Gallery, Report, hash_ip, unreviewed_reports
from gallery.project.env import env_rate
from gallery.services import moderation, reports

pytestmark = pytest.mark.django_db

State = Gallery.ModerationState


@pytest.fixture
def report_url(gallery: Gallery, build: Build) -> str:
    """The report form of ``gallery``, public (approved, with a live build)."""
    return reverse("gallery:report", args=[gallery.id])


def page_of(gallery: Gallery, path: str = "/chinook/album?_sort=title") -> str:
    return f"http://{gallery.id}.localhost:8000{path}"


def post(client: Client, form_url: str, ip: str = "203.0.113.7", **fields: str):
    data = {"reason": Report.Reason.PERSONAL_DATA, "details": "Row 3 lists a home address.", "email": "", **fields}
    return client.post(form_url, data, REMOTE_ADDR=ip)


# --- The form ---------------------------------------------------------------------------------


def test_the_form_names_the_gallery_and_the_page_reported(client, gallery, report_url):
    response = client.get(report_url, {"url": page_of(gallery)})
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Report “{gallery.title}”" in html
    assert f"Page reported: <a href=\"{page_of(gallery).replace('&', '&amp;')}\"" in html
    assert f'<input type="hidden" name="url" value="{page_of(gallery)}"' in html
    for reason in Report.Reason:
        assert f'value="{reason.value}"' in html and reason.label in html
    assert 'name="csrfmiddlewaretoken"' in html


@pytest.mark.parametrize(
    "url",
    ["http://abcdefabcdef.localhost:8000/chinook", "https://evil.example/phish", "not a url", "http://localhost:8000/"],
)
def test_a_page_that_is_not_this_gallerys_is_neither_shown_nor_stored(client, gallery, report_url, url):
    assert b"Page reported" not in client.get(report_url, {"url": url}).content
    assert post(client, report_url, url=url).status_code == 302
    assert Report.objects.get().page_url == ""


def test_a_report_is_recorded_with_a_hash_of_the_address_and_an_audit_record(client, gallery, report_url):
    response = post(client, report_url, url=page_of(gallery), email="reader@example.com", details="  Row 3.  ")
    assert response.status_code == 302
    assert response["Location"] == reverse("gallery:report-thanks", args=[gallery.id])
    report = Report.objects.get()
    assert (report.gallery, report.reason, report.details, report.email, report.page_url) == (
        gallery, Report.Reason.PERSONAL_DATA, "Row 3.", "reader@example.com", page_of(gallery)
    )
    assert report.reporter_key == hash_ip("203.0.113.7") and "203.0.113.7" not in report.reporter_key
    event = AuditEvent.objects.get(action=AuditEvent.Action.REPORT)
    assert event.gallery_id == gallery.id
    assert event.reason == "It exposes personal data"
    assert event.actor is None and event.actor_label == f"anonymous {report.reporter_key[:8]}"
    assert event.details == {"report": report.pk, "reason": "personal_data", "page_url": page_of(gallery)}
    thanks = client.get(response["Location"])
    assert thanks.status_code == 200 and b"Thank you for your report" in thanks.content


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"reason": ""}, "reason", "Choose what is wrong with this gallery."),
        ({"reason": "boring"}, "reason", "Select a valid choice."),
        ({"reason": Report.Reason.OTHER, "details": "  "}, "details", "you chose “Something else”"),
        ({"email": "not-an-address"}, "email", "Enter an email address such as you@example.com"),
        ({"details": "x" * 5001}, "details", "at most 5000 characters"),
    ],
)
def test_bad_input_gets_the_form_again_with_a_message_and_the_input_kept(client, report_url, fields, field, message):
    response = post(client, report_url, **fields)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    if "details" in fields and fields["details"].strip():
        assert fields["details"].encode() in response.content
    assert not Report.objects.exists()


@pytest.mark.parametrize("state", [State.PENDING, State.REJECTED, State.TAKEN_DOWN, State.DELETED])
def test_only_public_galleries_can_be_reported(client, gallery, report_url, state):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    assert client.get(report_url).status_code == 404
    assert post(client, report_url).status_code == 404
    assert not Report.objects.exists()


def test_an_approved_gallery_without_a_live_build_and_an_unknown_one_cannot_be_reported(client, gallery):
    assert client.get(reverse("gallery:report", args=[gallery.id])).status_code == 404
    assert client.get(reverse("gallery:report", args=["nosuchgallery"])).status_code == 404
    assert client.get(reverse("gallery:report-thanks", args=["nosuchgallery"])).status_code == 404


def test_the_form_refuses_a_post_without_the_csrf_token(gallery, report_url):
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, report_url).status_code == 403
    assert not Report.objects.exists()
    form = strict.get(report_url)
    token = form.context["csrf_token"]
    assert post(strict, report_url, csrfmiddlewaretoken=str(token)).status_code == 302
    assert Report.objects.count() == 1


def test_reports_are_rate_limited_per_address_with_a_clear_message(client, report_url, settings):
    settings.REPORT_RATE_LIMIT = "2/h"
    assert [post(client, report_url).status_code for _ in range(2)] == [302, 302]
    limited = post(client, report_url, details="My third report")
    assert limited.status_code == 429
    assert "Too many reports from your address: the limit is 2 per hour." in limited.content.decode()
    assert b"My third report" in limited.content, "the reader's text is kept"
    assert Report.objects.count() == 2
    assert post(client, report_url, ip="198.51.100.9").status_code == 302, "another address is not limited"
    assert client.get(report_url, REMOTE_ADDR="203.0.113.7").status_code == 200, "reading the form is not limited"


@pytest.mark.parametrize("value", ["5/h", "100/10m", "1/d", "30/s"])
def test_a_report_rate_is_count_per_period(value, monkeypatch):
    monkeypatch.setenv("REPORT_RATE_LIMIT", value)
    assert env_rate("REPORT_RATE_LIMIT", "5/h") == value


@pytest.mark.parametrize("value", ["5", "five/h", "5/hour", "5/w"])
def test_a_malformed_report_rate_is_refused_naming_the_variable(value, monkeypatch):
    monkeypatch.setenv("REPORT_RATE_LIMIT", value)
    with pytest.raises(ImproperlyConfigured, match="REPORT_RATE_LIMIT must be a rate such as 5/h"):
        env_rate("REPORT_RATE_LIMIT", "5/h")


# --- Reporter keys and the automatic takedown ---------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("203.0.113.7", "203.0.113.7", True),
        ("203.0.113.7", "203.0.113.8", False),
        ("203.0.113.7", "::ffff:203.0.113.7", True),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("2001:db8:1:2::1", "2001:db8:1:2::1%eth0", True),
    ],
)
def test_a_reporter_key_is_a_salted_hash_of_the_ipv4_address_or_the_ipv6_64(first, second, same):
    key = reports.reporter_key_for(first)
    assert len(key) == 64 and first not in key
    assert (reports.reporter_key_for(second) == key) is same


def test_an_ipv4_reporter_key_is_the_hash_of_the_address_and_no_address_has_no_key():
    assert reports.reporter_key_for("203.0.113.7") == hash_ip("203.0.113.7")
    assert reports.reporter_key_for("2001:db8:1:2::1") == hash_ip("2001:db8:1:2::/64")
    assert reports.reporter_key_for("") == ""


def report(gallery: Gallery, key: str) -> Report:
    return reports.record_report(
        gallery, reason=Report.Reason.ILLEGAL, details="", email="", reporter_key=key
    )


def test_enough_distinct_reporters_take_an_approved_gallery_down_for_review(gallery, build, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 3
    for key in ("a" * 64, "b" * 64, "b" * 64, "b" * 64):
        report(gallery, key)
    gallery.refresh_from_db()
    assert gallery.moderation_state == State.APPROVED, "one reader reporting three times is one reporter"
    report(gallery, "c" * 64)
    gallery.refresh_from_db()
    assert gallery.moderation_state == State.APPROVED and gallery.held_at is not None
    assert not gallery.is_public
    hold = AuditEvent.objects.get(action=AuditEvent.Action.HOLD)
    assert hold.actor is None and hold.actor_label == "system"
    assert hold.reason == "Held for review automatically: 3 readers reported it (REPORTS_TAKEDOWN_THRESHOLD is 3)."
    assert gallery.moderation_reason == hold.reason
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT).count() == 5


def test_a_threshold_of_zero_never_takes_a_gallery_down(gallery, build, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 0
    for number in range(5):
        report(gallery, f"{number}" * 64)
    gallery.refresh_from_db()
    assert gallery.moderation_state == State.APPROVED
    assert Report.objects.count() == 5


def test_distinct_addresses_reporting_through_the_form_hold_the_gallery_for_review(client, gallery, report_url, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 2
    assert post(client, report_url, ip="203.0.113.1").status_code == 302
    assert post(client, report_url, ip="203.0.113.1").status_code == 302
    assert Gallery.objects.get(pk=gallery.pk).moderation_state == State.APPROVED
    last = post(client, report_url, ip="203.0.113.2")
    assert last.status_code == 302
    assert Gallery.objects.get(pk=gallery.pk).held_at is not None
    # The reader whose report held it still gets the thank-you page; the form is gone.
    assert client.get(last["Location"]).status_code == 200
    assert client.get(report_url).status_code == 404


def test_an_unknown_reason_is_refused(gallery, build):
    with pytest.raises(ValueError, match="unknown report reason 'boring'"):
        reports.record_report(gallery, reason="boring", details="", email="", reporter_key="")
    assert not Report.objects.exists()


# --- What counts toward a hold: reports about harm, since the latest decision, one per network ------


def is_held(gallery: Gallery) -> bool:
    return Gallery.objects.get(pk=gallery.pk).held_at is not None


def test_after_a_hold_is_released_only_new_reports_count_toward_another(client, gallery, report_url, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 3
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert post(client, report_url, ip=ip).status_code == 302
    assert is_held(gallery)
    held = Gallery.objects.get(pk=gallery.pk)
    moderation.approve(held, build=held.live_build_id)  # the moderator releases the hold, reviewing the live build
    assert not is_held(gallery)

    assert post(client, report_url, ip="203.0.113.4").status_code == 302
    assert not is_held(gallery), "one report after the release does not hold it again"
    assert Gallery.objects.filter(pk=gallery.pk).filter(unreviewed_reports()).exists()
    assert post(client, report_url, ip="203.0.113.1").status_code == 302
    assert not is_held(gallery)
    assert post(client, report_url, ip="203.0.113.5").status_code == 302
    assert is_held(gallery), "three distinct reporters since the release hold it again"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.HOLD).count() == 2


def test_two_accounts_reporting_from_one_ipv4_address_are_one_reporter(
    client, gallery, report_url, settings, make_user
):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 2
    for name in ("first", "second"):
        client.force_login(make_user(name))
        assert post(client, report_url, ip="203.0.113.7").status_code == 302
    assert not is_held(gallery)
    assert Report.objects.values("reporter_key").distinct().count() == 1
    assert post(client, report_url, ip="198.51.100.7").status_code == 302
    assert is_held(gallery)


def test_ipv6_addresses_of_one_64_are_one_reporter_and_of_two_64s_two(client, gallery, report_url, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 2
    assert post(client, report_url, ip="2001:db8:1:2::1").status_code == 302
    assert post(client, report_url, ip="2001:db8:1:2:9f3c:12:5a:77").status_code == 302
    assert not is_held(gallery), "two addresses of one /64"
    assert post(client, report_url, ip="2001:db8:1:3::1").status_code == 302
    assert is_held(gallery), "a second /64"


@pytest.mark.parametrize("reason", [Report.Reason.BROKEN, Report.Reason.COPYRIGHT, Report.Reason.OTHER])
def test_reports_not_about_harm_never_hold_a_gallery_but_put_it_in_the_queue(
    client, gallery, report_url, settings, reason
):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 3
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"):
        assert post(client, report_url, ip=ip, reason=reason, details="The map stays blank.").status_code == 302
    gallery = Gallery.objects.get(pk=gallery.pk)
    assert gallery.held_at is None and gallery.is_public
    assert client.get(report_url).status_code == 200, "still public, still reportable"
    assert list(Gallery.objects.awaiting_review()) == [gallery]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.HOLD).exists()


def test_only_reports_about_harm_count_toward_the_threshold(client, gallery, report_url, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 3
    assert post(client, report_url, ip="203.0.113.1", reason=Report.Reason.BROKEN).status_code == 302
    assert post(client, report_url, ip="203.0.113.2", reason=Report.Reason.SPAM).status_code == 302
    assert post(client, report_url, ip="203.0.113.3", reason=Report.Reason.HARMFUL).status_code == 302
    assert not is_held(gallery), "the broken report does not count"
    assert post(client, report_url, ip="203.0.113.1", reason=Report.Reason.ILLEGAL).status_code == 302
    assert is_held(gallery), "its reporter's report about harm does"


def test_the_form_says_which_reasons_can_hide_a_gallery(client, report_url, settings):
    settings.REPORTS_TAKEDOWN_THRESHOLD = 3
    html = client.get(report_url).content.decode()
    assert set(Report.HOLD_REASONS) == {"personal_data", "illegal", "harmful", "spam"}
    assert hold_reasons_help() in html
    for reason in Report.Reason:
        assert (f"“{reason.label}”" in hold_reasons_help()) is (reason in Report.HOLD_REASONS)
    settings.REPORTS_TAKEDOWN_THRESHOLD = 0
    assert "hidden until a moderator" not in client.get(report_url).content.decode()
