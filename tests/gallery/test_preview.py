"""Signed, expiring preview origins: the label's round trip, what it refuses, and what the content origin serves."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from builder.csp import gallery_policy
from builder.pyodide import PYODIDE_VERSION
from gallery.content.pages import killswitch_source
from gallery.content.preview import (
    PreviewDenied,
    parse_preview_label,
    preview_label,
    preview_signature,
    preview_url,
)
from gallery.embed import InvalidGalleryURL, parse_gallery_url
from gallery.models import Build, BuildReview, BuildState, Gallery
from gallery.origins import CONTENT_LABEL_RE, parse_content_label
from gallery.services import moderation

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)
DNS_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
RUNTIME_PATH = f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs"


@pytest.fixture(autouse=True)
def lifetime(settings) -> None:
    """A day, whatever the environment says; content origins are ``<label>.localhost:8000`` as for ``content_client``."""
    settings.PREVIEW_LIFETIME = 24 * 3600


def label_of(url: str) -> str:
    host = urlsplit(url).hostname
    assert host is not None and host.endswith(".localhost"), url
    return host.removesuffix(".localhost")


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def expiry_of(label: str) -> str:
    return label.split("-")[2]


def denied(label: str, *, now: datetime = NOW) -> PreviewDenied.Reason:
    with pytest.raises(PreviewDenied) as refused:
        parse_preview_label(label, now=now)
    return refused.value.reason


# --- The label ------------------------------------------------------------------------------


def test_a_preview_url_round_trips_to_its_build_for_at_least_the_lifetime(build):
    url = preview_url(build, now=NOW)
    assert url.startswith("http://pv-") and url.endswith(".localhost:8000/")
    grant = parse_preview_label(label_of(url), now=NOW)
    assert grant.build_id == build.id
    assert grant.label == label_of(url)
    lifetime = timedelta(days=1)
    # Rounded up to the next hour, so links minted within that hour share one origin.
    assert NOW + lifetime <= grant.expires_at < NOW + lifetime + timedelta(hours=1)
    assert grant.expires_at.minute == grant.expires_at.second == 0
    assert preview_url(build, now=NOW + timedelta(minutes=20)) == url
    assert parse_preview_label(label_of(url), now=grant.expires_at - timedelta(seconds=1)) == grant


def test_a_preview_label_is_a_dns_label_and_never_a_gallery_or_pinned_label(build):
    label = label_of(preview_url(build, now=NOW))
    assert len(label) <= 63
    assert DNS_LABEL_RE.fullmatch(label)
    assert CONTENT_LABEL_RE.fullmatch(label) is None
    assert parse_content_label(label) is None
    # Nor can it be embedded or given to oEmbed as a gallery.
    with pytest.raises(InvalidGalleryURL):
        parse_gallery_url(preview_url(build))


def test_a_shorter_lifetime_is_honoured(build, settings):
    settings.PREVIEW_LIFETIME = 600
    grant = parse_preview_label(label_of(preview_url(build, now=NOW)), now=NOW)
    assert NOW + timedelta(seconds=600) <= grant.expires_at < NOW + timedelta(seconds=1200)


def test_an_expired_label_is_refused_from_its_expiry_on(build):
    grant = parse_preview_label(label_of(preview_url(build, now=NOW)), now=NOW)
    assert denied(grant.label, now=grant.expires_at) == PreviewDenied.Reason.EXPIRED
    with pytest.raises(PreviewDenied, match="expired on .* UTC. Open your gallery's page or the moderation queue"):
        parse_preview_label(grant.label, now=grant.expires_at + timedelta(days=30))


def test_a_tampered_signature_is_forged(build):
    label = label_of(preview_url(build, now=NOW))
    last = label[-1]
    assert denied(label[:-1] + ("a" if last != "a" else "b")) == PreviewDenied.Reason.FORGED


def test_a_tampered_expiry_is_forged_even_once_past(build):
    label = label_of(preview_url(build, now=NOW))
    prefix, build_id, expiry, signature = label.split("-")
    later = int(expiry, 36) + 36**3
    tampered = f"{prefix}-{build_id}-{preview_label(build_id, later).split('-')[2]}-{signature}"
    assert denied(tampered) == PreviewDenied.Reason.FORGED
    # Checked before the expiry: a forged label is never called merely expired.
    assert denied(tampered, now=NOW + timedelta(days=3650)) == PreviewDenied.Reason.FORGED


def test_another_builds_signature_does_not_open_this_build(build, make_build):
    other = make_build()
    label = label_of(preview_url(other, now=NOW))
    _prefix, _other_id, expiry, signature = label.split("-")
    assert denied(f"pv-{build.id}-{expiry}-{signature}") == PreviewDenied.Reason.FORGED


def test_a_label_signed_with_another_key_is_forged_unless_that_key_is_a_fallback(build, settings):
    settings.SECRET_KEY = "the old key " * 5
    label = label_of(preview_url(build, now=NOW))
    settings.SECRET_KEY = "the new key " * 5
    assert denied(label) == PreviewDenied.Reason.FORGED
    settings.SECRET_KEY_FALLBACKS = ["the old key " * 5]
    assert parse_preview_label(label, now=NOW).build_id == build.id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda label: "pv-",
        lambda label: "pv",
        lambda label: label + "-",
        lambda label: label + "a",  # signature too long
        lambda label: label[:-1],  # signature too short
        lambda label: label.replace("-", "--", 1),
        lambda label: label.replace("pv-", "pw-"),
        lambda label: label.replace("pv-", ""),
        lambda label: label.replace(f"-{expiry_of(label)}-", f"-0{expiry_of(label)}-"),  # not canonical
        lambda label: label.replace(f"-{expiry_of(label)}-", "--"),
        lambda label: label.replace(f"-{expiry_of(label)}-", "-zzzzzzzz-"),  # past the year 4441
        lambda label: label[:-1] + "1",  # not base32
        lambda label: label[:-1] + "=",
        lambda label: label[:-1] + "\u00e9",
        lambda label: label.split("-", 2)[0] + "-short-" + label.split("-", 2)[2],
    ],
)
def test_a_malformed_label_is_refused_as_such(build, mangle):
    label = label_of(preview_url(build, now=NOW))
    assert denied(mangle(label)) == PreviewDenied.Reason.MALFORMED


def test_labels_are_read_case_insensitively_as_hosts_are(build):
    label = label_of(preview_url(build, now=NOW))
    assert parse_preview_label(label.upper(), now=NOW).build_id == build.id


@pytest.mark.parametrize(("build_id", "expiry"), [("short", 10), ("0123456789abcdef", 0), ("0123456789abcdef", 36**7)])
def test_preview_label_refuses_what_it_cannot_sign(build_id, expiry):
    with pytest.raises(ValueError, match="build id|expiry"):
        preview_label(build_id, expiry)


def test_the_signature_is_lowercase_base32_of_130_bits():
    assert re.fullmatch(r"[a-z2-7]{26}", preview_signature("0123456789abcdef", 1_800_000_000))


# --- Serving --------------------------------------------------------------------------------


def assert_preview_headers(response) -> None:
    """Every answer of a preview origin: hardened, not framed, not indexed, not shared."""
    assert response["X-Content-Type-Options"] == "nosniff"
    # The gallery policy (builder.csp), except that no page may frame a preview.
    assert response["Content-Security-Policy"] == gallery_policy(()).replace("frame-ancestors *", "frame-ancestors 'none'")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Robots-Tag"] == "noindex"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"].startswith("private")
    assert not response.cookies


@pytest.fixture
def pending(gallery: Gallery, build: Build, bundle) -> Gallery:
    """``gallery`` waiting for a moderator, nothing live, with a ready build waiting for review and its files in storage."""
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING, live_build=None)
    Build.objects.filter(pk=build.pk).update(review=BuildReview.PENDING, approval="")
    gallery.refresh_from_db()
    build.refresh_from_db()
    return gallery


def test_a_pending_gallery_is_served_on_its_preview_but_not_on_its_public_origin(client, pending, build, bundle):
    host = host_of(preview_url(build))
    page = client.get("/chinook/album", HTTP_HOST=host)
    assert page.status_code == 200
    # The build's page as stored: no oEmbed discovery on a preview.
    assert page.getvalue() == bundle[f"builds/{build.id}/index.html"]
    assert "Link" not in page
    assert page["Content-Type"] == "text/html; charset=utf-8"
    assert page["Cache-Control"] == "private, no-store"
    assert_preview_headers(page)

    worker = client.get("/sw.js", HTTP_HOST=host)
    assert worker.getvalue() == bundle[f"builds/{build.id}/sw.js"]
    assert worker["Service-Worker-Allowed"] == "/"
    assert worker["Cache-Control"] == "private, no-store"
    assert_preview_headers(worker)

    database = client.get(f"/_build/{build.id}/data/chinook.db", HTTP_HOST=host)
    assert database.getvalue() == bundle[f"builds/{build.id}/data/chinook.db"]
    # Immutable for the reader's browser, but no shared cache keeps it past the link's expiry.
    assert database["Cache-Control"] == "private, max-age=31536000, immutable"
    assert_preview_headers(database)
    assert client.get(RUNTIME_PATH, HTTP_HOST=host).getvalue() == bundle[f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs"]
    assert client.get("/robots.txt", HTTP_HOST=host).getvalue() == b"User-agent: *\nDisallow: /\n"

    public = client.get("/chinook/album", HTTP_HOST=f"{pending.id}.localhost:8000")
    assert public.status_code == 404
    assert b"This gallery is not published (yet)" in public.content
    assert public["Content-Security-Policy"].endswith("; frame-ancestors *")


def test_a_preview_serves_only_its_own_builds_files(client, pending, build, make_build, make_bundle):
    other = make_build()
    make_bundle(other)
    host = host_of(preview_url(build))
    response = client.get(f"/_build/{other.id}/data/chinook.db", HTTP_HOST=host)
    assert response.status_code == 404
    assert_preview_headers(response)
    assert client.get(f"/_download/{other.id}.zip", HTTP_HOST=host).status_code == 404
    # Nor a self-host copy of its own: downloads are of approved versions only.
    assert client.get(f"/_download/{build.id}.zip", HTTP_HOST=host).status_code == 404


def test_an_uppercase_preview_host_is_the_same_origin(client, pending, build):
    url = preview_url(build)
    response = client.get("/", HTTP_HOST=host_of(url).upper())
    assert response.status_code == 200
    assert f"booting {build.id}".encode() in response.getvalue()


@pytest.mark.parametrize(
    "state",
    [Gallery.ModerationState.PENDING, Gallery.ModerationState.APPROVED, Gallery.ModerationState.REJECTED],
)
def test_a_preview_serves_its_build_whatever_the_moderation_state(client, gallery, build, bundle, state):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    response = client.get("/", HTTP_HOST=host_of(preview_url(build)))
    assert response.status_code == 200
    assert f"booting {build.id}".encode() in response.getvalue()


@pytest.mark.parametrize("state", [BuildState.QUEUED, BuildState.BUNDLING, BuildState.FAILED, BuildState.CANCELLED])
def test_a_preview_of_a_build_that_is_not_ready_is_not_found(client, pending, make_build, state):
    host = host_of(preview_url(make_build(state)))
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"has not finished building" in response.content
    assert_preview_headers(response)


def assert_gone(client, host: str, build: Build, notice: bytes) -> None:
    """Every path of the preview ``host`` answers 410 with ``notice``, and /sw.js is the kill switch."""
    for path in ("/", "/chinook/album", f"/_build/{build.id}/data/chinook.db", RUNTIME_PATH):
        gone = client.get(path, HTTP_HOST=host)
        assert gone.status_code == 410
        assert notice in gone.content
        assert b"SQLite format 3" not in gone.content
        assert_preview_headers(gone)
    # A moderator or publisher who opened the preview keeps nothing of it.
    assert client.get("/sw.js", HTTP_HOST=host).content == killswitch_source()


def reject(gallery: Gallery) -> None:
    moderation.reject(gallery, "The licence field is missing; add it and upload again.")


def take_down(gallery: Gallery) -> None:
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.APPROVED)
    gallery.refresh_from_db()
    moderation.take_down(gallery, "Reported for publishing personal data; upheld.")


def delete(gallery: Gallery) -> None:
    moderation.delete_gallery(gallery)


@pytest.mark.parametrize(
    ("remove", "notice"),
    [
        (reject, b"A moderator rejected this version"),
        (take_down, b"This gallery was taken down"),
        (delete, b"This gallery was deleted"),
    ],
    ids=["rejected", "taken-down", "deleted"],
)
def test_a_removed_gallerys_preview_is_gone_with_its_files(
    client, pending, build, storage, django_capture_on_commit_callbacks, remove, notice
):
    host = host_of(preview_url(build))
    assert client.get("/", HTTP_HOST=host).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        remove(pending)
    build.refresh_from_db()
    assert build.files_deleted
    assert not storage.exists(f"builds/{build.id}/index.html")
    assert_gone(client, host, build, notice)


@pytest.mark.parametrize(
    ("remove", "notice"),
    [(reject, b"A moderator rejected this version"), (take_down, b"taken down"), (delete, b"deleted")],
    ids=["rejected", "taken-down", "deleted"],
)
def test_a_rejection_takedown_or_deletion_closes_the_preview_before_the_files_are_removed(
    client, pending, build, bundle, remove, notice
):
    # Removal runs after commit and may fail (storage outage): the state alone closes the preview.
    host = host_of(preview_url(build))
    remove(pending)
    assert not Build.objects.get(pk=build.pk).files_deleted
    assert_gone(client, host, build, notice)


def test_a_rejected_gallerys_corrected_version_can_be_previewed_but_not_the_rejected_one(
    client, pending, build, make_build, make_bundle, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reject(pending)
    corrected = make_build()
    make_bundle(corrected)
    response = client.get("/", HTTP_HOST=host_of(preview_url(corrected)))
    assert response.status_code == 200
    assert f"booting {corrected.id}".encode() in response.getvalue()
    assert_gone(client, host_of(preview_url(build)), build, b"Upload a corrected version")


def test_a_preview_of_a_build_no_longer_in_the_database_serves_nothing_but_the_kill_switch(client, pending, build):
    host = host_of(preview_url(build))
    Build.objects.filter(pk=build.pk).delete()
    response = client.get(f"/_build/{build.id}/data/chinook.db", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"SQLite format 3" not in response.content
    assert client.get("/sw.js", HTTP_HOST=host).content == killswitch_source()


def bad_labels(build: Build) -> dict[str, str]:
    valid = label_of(preview_url(build))
    expired = preview_label(build.id, int((datetime.now(UTC) - timedelta(seconds=1)).timestamp()))
    return {
        "expired": expired,
        "forged": valid[:-1] + ("a" if valid[-1] != "a" else "b"),
        "malformed": "pv-" + build.id,
    }


@pytest.mark.parametrize("case", ["expired", "forged", "malformed"])
@pytest.mark.parametrize(
    "path",
    ["/", "/sw.js", "/chinook/album", "/_build/{build}/data/chinook.db", RUNTIME_PATH, "/robots.txt", "/_download/{build}.zip"],
)
def test_an_expired_or_forged_preview_link_serves_nothing(client, pending, build, case, path):
    host = f"{bad_labels(build)[case]}.localhost:8000"
    response = client.get(path.format(build=build.id), HTTP_HOST=host)
    if path == "/sw.js" and case == "expired":
        # The link was valid once, so a reader's worker may be installed there: the kill switch ends it.
        assert response.status_code == 200
        assert response.content == killswitch_source()
        assert_preview_headers(response)
        return
    # A forged or malformed label never served anything: 403 even for /sw.js.
    assert response.status_code == 403
    assert response.content != killswitch_source()
    assert b"SQLite format 3" not in response.content
    assert b"booting" not in response.content
    assert b"Preview link not valid" in response.content
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert_preview_headers(response)


def test_the_403_page_says_what_to_do(client, pending, build):
    response = client.get("/", HTTP_HOST=f"{bad_labels(build)['expired']}.localhost:8000")
    assert b"Open your gallery&#x27;s page or the moderation queue for a fresh link" in response.content
