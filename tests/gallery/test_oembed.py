"""``/oembed`` (oEmbed 1.0, oembed.com) and the embed panel's ``/g/<id>/embed.json``."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gallery import embed
from gallery.models import Build, BuildReview, BuildState, Gallery

pytestmark = pytest.mark.django_db


@pytest.fixture
def public(gallery: Gallery, build: Build, set_bundled) -> Gallery:
    Build.objects.filter(pk=build.pk).update(
        has_card=True, tables=[{"name": "table/with/slashes.csv", "rows": 1, "columns": ["x"]}]
    )
    set_bundled(
        build,
        metadata={"databases": {"chinook": {"queries": {"by_artist": {"sql": "select * from Album where ArtistId = :id"}}}}},
    )
    gallery.refresh_from_db()
    return gallery


@pytest.fixture
def older_build(public: Gallery, make_build) -> Build:
    """An older approved, ready build of ``public`` (its live build stays live)."""
    return make_build(review=BuildReview.APPROVED)


@pytest.fixture
def waiting_build(public: Gallery, make_build) -> Build:
    """A newer ready build of ``public`` that waits for a moderator's review."""
    return make_build()


def oembed(client, **params: object):
    return client.get(reverse("gallery:oembed"), params)


def test_an_oembed_answer_has_every_field_the_spec_asks_of_a_rich_type(client, public: Gallery, build, settings):
    response = oembed(client, url=f"{public.url}chinook/Album?_sort=Title", format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["type"] == "rich"
    assert data["version"] == "1.0"
    assert data["title"] == "Chinook"
    assert data["provider_name"] == "Glasshouse"
    assert data["provider_url"] == f"{settings.APP_URL}/"
    assert (data["width"], data["height"]) == (embed.DEFAULT_WIDTH, embed.DEFAULT_HEIGHT)
    assert data["html"] == embed.embed_snippet(
        embed.EmbedTarget(public.id, "/chinook/Album?_sort=Title"), title="Chinook", height=data["height"], fit_content=False
    )
    assert f'src="{public.url}-/embed/chinook/Album?_sort=Title"' in data["html"]
    assert data["thumbnail_url"] == f"{public.url}_build/{build.id}/card.png"
    assert (data["thumbnail_width"], data["thumbnail_height"]) == (1200, 630)
    assert data["cache_age"] == embed.LIVE_CACHE_AGE
    assert response["Cache-Control"] == f"public, max-age={embed.LIVE_CACHE_AGE}"


@pytest.mark.parametrize(
    ("maxwidth", "maxheight", "size", "thumbnail"),
    [(400, 300, (400, 300), (400, 210)), (2000, 2000, (800, 600), (1200, 630)), (1000, 63, (800, 63), (120, 63))],
)
def test_oembed_never_goes_above_maxwidth_or_maxheight(client, public, maxwidth, maxheight, size, thumbnail):
    data = oembed(client, url=public.url, maxwidth=maxwidth, maxheight=maxheight).json()
    assert (data["width"], data["height"]) == size
    assert (data["thumbnail_width"], data["thumbnail_height"]) == thumbnail
    assert f'height="{size[1]}"' in data["html"]


def test_a_build_without_a_card_gives_no_thumbnail_fields(client, public, build):
    Build.objects.filter(pk=build.pk).update(has_card=False)
    data = oembed(client, url=public.url).json()
    assert not {"thumbnail_url", "thumbnail_width", "thumbnail_height"} & set(data)


@pytest.mark.parametrize(
    ("path", "embed_path"),
    [
        ("", "-/embed/"),
        ("chinook/Album/12", "-/embed/chinook/Album/12"),
        ("chinook/by_artist?id=3", "-/embed/chinook/by_artist?id=3"),
        ("-/embed/chinook?sql=select+1&_glasshouse_chrome=1", "-/embed/chinook?sql=select+1&_glasshouse_chrome=1"),
    ],
    ids=["home", "row", "query", "embed-url"],
)
def test_oembed_embeds_any_view_of_the_gallery(client, public, path, embed_path):
    data = oembed(client, url=public.url + path).json()
    assert f'src="{public.url}{embed_path}"'.replace("&", "&amp;") in data["html"]


def test_oembed_of_the_app_page_embeds_the_whole_app(client, public, settings):
    data = oembed(client, url=f"{settings.APP_URL}/g/{public.id}/").json()
    assert f'src="{public.url}-/embed/"' in data["html"]


def test_oembed_of_a_pinned_origin_embeds_that_build(client, public, older_build):
    pinned = public.pinned_url(older_build.id)
    data = oembed(client, url=pinned + "chinook/Album").json()
    assert f'src="{pinned}-/embed/chinook/Album"' in data["html"]
    assert data["cache_age"] == embed.PINNED_CACHE_AGE
    assert "thumbnail_url" not in data  # that build recorded no card


@pytest.mark.parametrize("state", ["pending", "rejected", "taken_down"])
def test_oembed_is_404_for_a_gallery_that_is_not_public(client, public, state):
    Gallery.objects.filter(pk=public.pk).update(moderation_state=state)
    response = oembed(client, url=public.url)
    assert response.status_code == 404
    assert "No public gallery" in response.json()["error"]


def test_oembed_is_404_for_an_unknown_gallery_or_build(client, public, older_build, waiting_build):
    assert oembed(client, url="http://zzzzzzzzzzzz.localhost:8000/").status_code == 404
    assert oembed(client, url=public.pinned_url("0" * 16)).status_code == 404
    # A version nobody approved has no embed, however ready its files are.
    assert oembed(client, url=public.pinned_url(waiting_build.id)).status_code == 404
    Build.objects.filter(pk=older_build.pk).update(state=BuildState.FAILED)
    assert oembed(client, url=public.pinned_url(older_build.id)).status_code == 404


@pytest.mark.parametrize("response_format", ["xml", "XML", "yaml"])
def test_oembed_answers_501_for_formats_other_than_json(client, public, response_format):
    response = oembed(client, url=public.url, format=response_format)
    assert response.status_code == 501
    assert "Only format=json" in response.json()["error"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "The url parameter is required"),
        ({"url": "   "}, "The url parameter is required"),
        ({"url": "https://example.com/article"}, "not a Glasshouse gallery"),
        ({"url": "not a url"}, "not an http"),
        ({"url": "GALLERY", "maxwidth": "wide"}, "maxwidth must be a positive whole number"),
        ({"url": "GALLERY", "maxheight": "0"}, "maxheight must be a positive whole number"),
    ],
)
def test_oembed_answers_400_with_a_clear_message_for_bad_input(client, public, params, message):
    params = {name: public.url if value == "GALLERY" else value for name, value in params.items()}
    response = oembed(client, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


# --- The embed panel's endpoint ---------------------------------------------------------------


def embed_code(client, gallery: Gallery, **params: object):
    return client.get(reverse("gallery:embed-code", args=[gallery.id]), params)


def test_the_panel_endpoint_makes_the_snippet_for_a_table_with_fit_content(client, public, settings):
    response = embed_code(client, public, show="table", table="table/with/slashes.csv", fit="1", height="450")
    assert response.status_code == 200
    data = response.json()
    url = f"{public.url}-/embed/chinook/table~2Fwith~2Fslashes~2Ecsv"
    assert data["embed_url"] == url
    assert data["view_url"] == f"{public.url}chinook/table~2Fwith~2Fslashes~2Ecsv"
    assert data["snippet"] == embed.embed_snippet(
        embed.parse_gallery_url(url), title="Chinook", height=450, fit_content=True
    )
    assert f'<script async src="{settings.APP_URL}/embed.js"></script>' in data["snippet"]
    assert (data["height"], data["fit"]) == (450, True)


def test_the_panel_endpoint_fills_a_canned_querys_parameters_and_keeps_the_chrome(client, public):
    data = embed_code(client, public, show="query", query="by_artist", **{"p.id": "3"}, chrome="1").json()
    assert data["embed_url"] == f"{public.url}-/embed/chinook/by_artist?id=3&_glasshouse_chrome=1"


def test_the_panel_endpoint_pins_this_version_on_request(client, public, build):
    data = embed_code(client, public, show="app", version="this").json()
    assert data["embed_url"] == f"{public.pinned_url(build.id)}-/embed/"


def test_the_panel_endpoint_takes_a_pasted_address_of_this_gallery(client, public, older_build):
    url = public.pinned_url(older_build.id) + "chinook/Album?_sort_desc=Title"
    data = embed_code(client, public, show="url", url=url).json()
    assert data["embed_url"] == f"{public.pinned_url(older_build.id)}-/embed/chinook/Album?_sort_desc=Title"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"show": "table", "table": "Nope"}, "no table 'Nope'"),
        ({"show": "query", "query": "nope"}, "no canned query 'nope'"),
        ({"show": "url", "url": "http://zzzzzzzzzzzz.localhost:8000/"}, "belongs to another gallery"),
        ({"show": "url", "url": "http://example.com/"}, "not a Glasshouse gallery"),
        ({"show": "url", "url": "PINNED_UNKNOWN"}, "does not exist"),
        ({"show": "url", "url": "PINNED_WAITING"}, "does not exist"),
        ({"show": "everything"}, "Choose what to show"),
        ({"show": "app", "height": "20"}, "from 100 to 5000"),
    ],
)
def test_the_panel_endpoint_explains_bad_choices(client, public, waiting_build, params, message):
    pinned = {"PINNED_UNKNOWN": public.pinned_url("0" * 16), "PINNED_WAITING": public.pinned_url(waiting_build.id)}
    params = {k: pinned.get(v, v) for k, v in params.items()}
    response = embed_code(client, public, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]
