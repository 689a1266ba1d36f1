"""Form fields are length-limited (forms, services and the columns agree), and titles and
descriptions written as markup stay text on every page that shows them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import escape

from gallery.models import (
    DESCRIPTION_MAX_LENGTH,
    METADATA_TEXT_MAX_LENGTH,
    MODERATION_REASON_MAX_LENGTH,
    REPORT_DETAILS_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Build,
    BuildState,
    Gallery,
    Report,
)
from gallery.services import galleries, reports, uploads

pytestmark = pytest.mark.django_db

PUBLISH = reverse("gallery:publish")
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAK = '"><img src=x onerror=alert(1)>'
TITLE = f"Title {SCRIPT} {ATTRIBUTE_BREAK}"
DESCRIPTION = f"Description {ATTRIBUTE_BREAK}\n{SCRIPT}"
#: What must never reach a page as markup: the tags the payloads would open.
LIVE_MARKUP = ("<script>alert(1)", "<img src=x", SCRIPT, ATTRIBUTE_BREAK)


def assert_inert(text: str, where: str) -> None:
    for markup in LIVE_MARKUP:
        assert markup not in text, f"{where}: {markup!r} appears unescaped"


# --- Length limits -------------------------------------------------------------------------------

TOO_LONG = [
    pytest.param("title", "t" * (TITLE_MAX_LENGTH + 1), TITLE_MAX_LENGTH, id="title"),
    pytest.param("description", "d" * (DESCRIPTION_MAX_LENGTH + 1), DESCRIPTION_MAX_LENGTH, id="description"),
    pytest.param("metadata", "#" * (METADATA_TEXT_MAX_LENGTH + 1), METADATA_TEXT_MAX_LENGTH, id="metadata"),
]


@pytest.mark.parametrize(("field", "value", "limit"), TOO_LONG)
def test_the_publish_form_refuses_an_overlong_field_saying_how_long_and_the_limit(
    client, upload_data, sent_builds, field, value, limit
):
    response = client.post(PUBLISH, upload_data(**{field: value}), HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][field] == [
        f"The {field} has {limit + 1} characters; shorten it to at most {limit} characters."
    ]
    assert Gallery.objects.count() == 0 and sent_builds == []


@pytest.mark.parametrize(("field", "value", "limit"), TOO_LONG)
def test_the_edit_form_refuses_an_overlong_field_and_keeps_the_gallery(
    client, owned_gallery, publisher, field, value, limit
):
    client.force_login(publisher)
    data = {"title": "Chinook", "description": "", "visibility": "listed", "datasette_version": "0.65.5", field: value}
    response = client.post(reverse("gallery:mine-edit", args=[owned_gallery.pk]), data)
    assert response.status_code == 400
    assert (
        f"The {field} has {limit + 1} characters; shorten it to at most {limit} characters."
        in response.content.decode()
    )
    owned_gallery.refresh_from_db()
    assert owned_gallery.title == "Chinook" and owned_gallery.description == "Music store"


def test_the_pages_tell_the_browser_the_limits(client):
    page = client.get(PUBLISH).content.decode()
    assert f'maxlength="{TITLE_MAX_LENGTH}"' in page
    assert f'maxlength="{DESCRIPTION_MAX_LENGTH}"' in page
    assert f'maxlength="{METADATA_TEXT_MAX_LENGTH}"' in page


def test_the_report_form_refuses_overlong_details(client, gallery, build):
    url = reverse("gallery:report", args=[gallery.pk])
    response = client.post(url, {"reason": "other", "details": "x" * (REPORT_DETAILS_MAX_LENGTH + 1)})
    assert response.status_code == 400
    assert f"The report has {REPORT_DETAILS_MAX_LENGTH + 1} characters" in response.content.decode()
    assert Report.objects.count() == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"title": "t" * (TITLE_MAX_LENGTH + 1)}, f"The title has {TITLE_MAX_LENGTH + 1} characters"),
        ({"description": "d" * (DESCRIPTION_MAX_LENGTH + 1)}, "The description has"),
        ({"metadata_text": "#" * (METADATA_TEXT_MAX_LENGTH + 1)}, "The metadata has"),
    ],
    ids=["title", "description", "metadata"],
)
def test_the_services_refuse_overlong_settings_whatever_calls_them(gallery, make_sqlite, arguments, message):
    """The ``publish`` command and any other caller get the forms' rule, not a database error."""
    from django.core.files import File

    settings_arguments = {
        "title": "T", "description": "", "plugins": [], "visibility": "listed", "metadata_text": "", **arguments,
    }  # fmt: skip
    with make_sqlite("x.db").open("rb") as fh, pytest.raises(uploads.UploadRejected, match=message):
        galleries.accept_upload(upload=File(fh, name="x.db"), filename="x.db", **settings_arguments)
    with pytest.raises(uploads.UploadRejected, match=message):
        galleries.update_gallery(gallery, **settings_arguments)
    with pytest.raises(ValueError, match="The report has"):
        reports.record_report(
            gallery, reason="other", details="x" * (REPORT_DETAILS_MAX_LENGTH + 1), email="", reporter_key=""
        )


@pytest.mark.parametrize(("field", "limit"), [("title", TITLE_MAX_LENGTH), ("description", DESCRIPTION_MAX_LENGTH)])
def test_the_gallery_columns_hold_the_same_limits(field, limit):
    assert Gallery._meta.get_field(field).max_length == limit
    gallery = Gallery(**{"title": "t", "database_name": "d", field: "x" * (limit + 1)})
    with pytest.raises(ValidationError, match=field):
        gallery.full_clean()


def test_the_report_column_holds_the_same_limit(gallery):
    assert Report._meta.get_field("details").max_length == REPORT_DETAILS_MAX_LENGTH
    with pytest.raises(ValidationError, match="details"):
        Report(gallery=gallery, reason="other", details="x" * (REPORT_DETAILS_MAX_LENGTH + 1)).full_clean()


def test_a_moderators_reason_is_length_limited_on_the_buttons_and_the_bulk_form(admin_client, gallery, build):
    too_long = "r" * (MODERATION_REASON_MAX_LENGTH + 1)
    message = f"The reason has {MODERATION_REASON_MAX_LENGTH + 1} characters; shorten it to at most"
    button = reverse("admin:gallery_gallery_moderate", args=[gallery.pk])
    refused = admin_client.post(button, {"do": "take_down", "reason": too_long}, follow=True)
    assert message in refused.content.decode()
    bulk = admin_client.post(
        reverse("admin:gallery_gallery_changelist"),
        {"action": "take_down_galleries", "_selected_action": [gallery.pk], "apply": "1", "reason": too_long},
    )
    assert message in bulk.content.decode()
    gallery.refresh_from_db()
    assert gallery.moderation_state == Gallery.ModerationState.APPROVED and gallery.moderation_reason == ""
    assert Gallery._meta.get_field("moderation_reason").max_length == MODERATION_REASON_MAX_LENGTH


# --- Escaping -------------------------------------------------------------------------------------


@pytest.fixture
def hostile(owned_gallery: Gallery, build: Build, set_bundled) -> Gallery:
    """``owned_gallery`` (public, live build, the publisher's) with markup as title and description
    (its own and its live build's, which public pages show)."""
    Gallery.objects.filter(pk=owned_gallery.pk).update(title=TITLE, description=DESCRIPTION)
    set_bundled(build, title=TITLE, description=DESCRIPTION)
    owned_gallery.refresh_from_db()
    return owned_gallery


def _pages(gallery: Gallery) -> dict[str, str]:
    build = gallery.live_build
    return {
        "home": reverse("gallery:index"),
        "home search": reverse("gallery:index") + "?q=Title",
        "gallery page": reverse("gallery:detail", args=[gallery.pk]),
        "build page": build.get_absolute_url(),
        "report page": reverse("gallery:report", args=[gallery.pk]),
    }


def _owner_pages(gallery: Gallery) -> dict[str, str]:
    return {
        "my galleries": reverse("gallery:mine"),
        "manage page": reverse("gallery:mine-gallery", args=[gallery.pk]),
        "edit page": reverse("gallery:mine-edit", args=[gallery.pk]),
        "delete page": reverse("gallery:mine-delete", args=[gallery.pk]),
    }


def test_public_pages_show_markup_as_text(client, hostile):
    for where, url in _pages(hostile).items():
        response = client.get(url)
        assert response.status_code == 200, where
        page = response.content.decode()
        assert escape(TITLE) in page, f"{where}: the title is shown (escaped)"
        assert_inert(page, where)
    page = client.get(reverse("gallery:detail", args=[hostile.pk])).content.decode()
    assert escape(ATTRIBUTE_BREAK) in page, "the description is shown (escaped)"


def test_publisher_pages_show_markup_as_text(client, hostile):
    client.force_login(hostile.owner)
    for where, url in _owner_pages(hostile).items():
        response = client.get(url)
        assert response.status_code == 200, where
        assert escape(TITLE) in response.content.decode(), where
        assert_inert(response.content.decode(), where)


def test_the_moderation_queue_and_change_page_show_markup_as_text(admin_client, hostile, make_build):
    pending = Gallery.objects.create(
        title=TITLE, description=DESCRIPTION, database_name="chinook", moderation_state=Gallery.ModerationState.PENDING
    )
    make_build(state=BuildState.READY, of=pending)
    for where, url in {
        "queue": reverse("admin:gallery_submission_changelist"),
        "galleries": reverse("admin:gallery_gallery_changelist"),
        "change page": reverse("admin:gallery_gallery_change", args=[pending.pk]),
        "reject page": reverse("admin:gallery_gallery_change", args=[hostile.pk]),
    }.items():
        response = admin_client.get(url)
        assert response.status_code == 200, where
        page = response.content.decode()
        assert escape(TITLE) in page, where
        assert_inert(page, where)


def test_oembed_and_the_embed_snippet_keep_the_title_text(client, hostile):
    page_url = "http://testserver" + reverse("gallery:detail", args=[hostile.pk])
    for where, response in {
        "oembed": client.get(reverse("gallery:oembed"), {"url": hostile.url}),
        "embed code": client.get(reverse("gallery:embed-code", args=[hostile.pk])),
    }.items():
        assert response.status_code == 200, (where, response.content[:500])
        assert response["Content-Type"] == "application/json"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert_inert(response.content.decode(), f"{where} (raw JSON)")
        data = json.loads(response.content)
        snippet = data.get("html") or data["snippet"]
        assert f'title="{escape(TITLE)}"' in snippet, where
        assert_inert(snippet, where)
    assert json.loads(client.get(reverse("gallery:oembed"), {"url": page_url}).content).get("title", TITLE) == TITLE


def test_a_title_typed_back_into_a_refused_form_stays_text(client, upload_data):
    """The publish form shown again (413, 400) puts what was typed in value and textarea."""
    response = client.post(PUBLISH, upload_data(title=TITLE, description=DESCRIPTION, file=""))
    assert response.status_code == 400
    page = response.content.decode()
    assert f'value="{escape(TITLE)}"' in page
    assert_inert(page, "publish form again")


def test_the_build_log_names_the_title_as_text(client, hostile, make_build: Callable[..., Build]):
    new = make_build(state=BuildState.QUEUED, of=hostile)
    new.append_log(f"New version of “{hostile.title}” uploaded.")
    client.force_login(hostile.owner)  # the log is the publisher's to see
    page = client.get(new.get_absolute_url()).content.decode()
    assert f"New version of “{escape(TITLE)}” uploaded." in page
    assert_inert(page, "build page with log")
