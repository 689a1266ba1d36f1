"""The gallery page on the app origin, the front page's cards and search, ``/embed.js`` and the
app origin's framing headers. The report form is tested in test_report.py."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from gallery import embed
from gallery.models import Approval, Build, BuildReview, BuildState, Gallery, bundled_settings

pytestmark = pytest.mark.django_db

TABLES = [
    {"name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"]},
    {"name": "Track", "rows": 3503, "columns": ["TrackId", "Name"]},
]
METADATA = {
    "databases": {
        "chinook": {
            "queries": {
                "albums_by_artist": {
                    "title": "Albums by artist",
                    "sql": "select * from Album where ArtistId = :artist_id",
                },
                "count": "select count(*) from Track",
            }
        }
    }
}


@pytest.fixture
def public(gallery: Gallery, build: Build, set_bundled) -> Gallery:
    """``gallery``, public, with a live build that recorded tables, a card and the zip's size, and bundled ``METADATA``."""
    Build.objects.filter(pk=build.pk).update(tables=TABLES, has_card=True, download_bytes=42_000_000)
    Gallery.objects.filter(pk=gallery.pk).update(metadata=METADATA)
    set_bundled(build, metadata=METADATA)
    gallery.refresh_from_db()
    return gallery


def detail(client, gallery: Gallery) -> str:
    response = client.get(reverse("gallery:detail", args=[gallery.id]))
    assert response.status_code == 200
    return response.content.decode()


def meta(page: str, key: str) -> str:
    match = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)"', page)
    assert match, f"no {key} meta tag"
    return html.unescape(match[1])


def test_the_gallery_page_shows_its_facts_and_panels(client, public: Gallery, build: Build) -> None:
    page = detail(client, public)
    assert "<h1>Chinook</h1>" in page
    assert "Music store" in page
    assert "Anonymous publisher" in page
    assert "<td>Album</td><td>347</td>" in page
    assert "<td>Track</td><td>3,503</td>" in page
    assert "datasette-pretty-json" in page
    assert f"Datasette {public.datasette_version}" in page
    assert f'id="open-gallery" href="{public.url}"' in page
    for panel in ('id="embed"', 'id="share"', 'id="download"'):
        assert panel in page
    assert f'href="{reverse("gallery:report", args=[public.id])}"' in page
    assert f'href="{public.url}_download/{build.id}.zip"' in page
    assert "40.1\xa0MB" in page  # 42,000,000 bytes in MiB, as filesizeformat counts
    assert public.pinned_url(build.id) in page
    assert 'value="albums_by_artist"' in page and 'name="p.artist_id"' in page


def test_the_gallery_page_carries_open_graph_twitter_and_oembed_discovery_tags(
    client, public: Gallery, build: Build, settings
) -> None:
    page = detail(client, public)
    page_url = f"{settings.APP_URL}/g/{public.id}/"
    card = f"{public.url}_build/{build.id}/card.png"
    assert meta(page, "og:title") == "Chinook"
    assert meta(page, "og:description") == "Music store"
    assert meta(page, "og:url") == page_url
    assert meta(page, "og:image") == card
    assert meta(page, "twitter:card") == "summary_large_image"
    assert meta(page, "twitter:image") == card
    discovery = re.search(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"', page)
    assert discovery and html.unescape(discovery[1]) == embed.oembed_url(page_url)
    assert client.get(html.unescape(discovery[1]).removeprefix(settings.APP_URL)).status_code == 200


def test_public_pages_show_the_live_builds_approved_settings_not_the_publishers_unreviewed_edit(
    client, public: Gallery, build: Build
) -> None:
    # The publisher edits the gallery after approval: title, description, plugins, metadata. Until a
    # build with them is approved, the gallery page, the front page and oEmbed keep what was approved.
    Gallery.objects.filter(pk=public.pk).update(
        title="Buy pills here", description="Unreviewed text", plugins=["datasette-cluster-map"], metadata={}
    )
    pages = {
        "gallery page": detail(client, public),
        "front page": front(client),
        "oembed": client.get(reverse("gallery:oembed"), {"url": public.url}).content.decode(),
    }
    for where, page in pages.items():
        assert "Chinook" in page, where
        assert "Buy pills here" not in page and "Unreviewed text" not in page, where
    assert "datasette-pretty-json" in pages["gallery page"] and "datasette-cluster-map" not in pages["gallery page"]
    assert 'value="albums_by_artist"' in pages["gallery page"]  # the approved metadata's canned query
    assert f"/g/{public.id}/" not in front(client, q="pills")  # the search matches what was approved


def test_a_build_without_a_card_gets_a_summary_card_and_no_image(client, public: Gallery, build: Build) -> None:
    Build.objects.filter(pk=build.pk).update(has_card=False, tables=[])
    page = detail(client, public)
    assert meta(page, "twitter:card") == "summary"
    assert "og:image" not in page and "card.png" not in page
    assert "did not record its tables" in page


def test_the_snippet_on_the_page_escapes_a_hostile_title(client, public: Gallery, build: Build, set_bundled) -> None:
    set_bundled(build, title='"<script>alert(1)</script>')
    page = detail(client, public)
    assert "<script>alert(1)" not in page
    assert "&amp;quot;&amp;lt;script&amp;gt;" in page  # the snippet's escaping, escaped again in the textarea


@pytest.mark.parametrize(
    ("moderation_state", "live"),
    [("pending", True), ("rejected", True), ("taken_down", True), ("approved", False)],
)
@pytest.mark.parametrize("name", ["gallery:detail", "gallery:report", "gallery:embed-code"])
def test_a_gallery_that_is_not_public_has_no_page(client, gallery, build, moderation_state, live, name) -> None:
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=moderation_state, live_build=build if live else None)
    assert client.get(reverse(name, args=[gallery.id])).status_code == 404


def test_an_unknown_gallery_has_no_page_and_the_404_says_what_to_do(client, db) -> None:
    response = client.get(reverse("gallery:detail", args=["zzzzzzzzzzzz"]))
    assert response.status_code == 404
    assert "waiting for a moderator" in response.content.decode()
    assert f'href="{reverse("gallery:index")}">browse the galleries' in response.content.decode()


def test_an_unlisted_gallery_has_a_page_that_says_so_and_asks_not_to_be_indexed(client, public: Gallery) -> None:
    assert 'name="robots"' not in detail(client, public)
    Gallery.objects.filter(pk=public.pk).update(visibility=Gallery.Visibility.UNLISTED)
    page = detail(client, public)
    assert "unlisted: only people with the link see it" in page
    assert '<meta name="robots" content="noindex">' in page


def test_the_build_page_links_the_gallery_page_once_public(client, public: Gallery, build: Build) -> None:
    page = client.get(build.get_absolute_url()).content.decode()
    assert f'href="/g/{public.id}/"' in page
    Gallery.objects.filter(pk=public.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    page = client.get(build.get_absolute_url()).content.decode()
    assert f"/g/{public.id}/" not in page


# --- Front page -----------------------------------------------------------------------------


def make_public_gallery(title: str, description: str = "", tables: list | None = None) -> Gallery:
    gallery = Gallery.objects.create(
        title=title, description=description, moderation_state=Gallery.ModerationState.APPROVED, database_name="data"
    )
    build = Build.objects.create(
        gallery=gallery, state=BuildState.READY, source_key="uploads/x/source.db", source_sha256="0" * 64,
        source_bytes=1, tables=tables or [], has_card=True, bundle_settings=bundled_settings(gallery),
        review=BuildReview.APPROVED, approval=Approval.OPERATOR,
    )  # fmt: skip
    gallery.live_build = build
    gallery.save()
    return gallery


def front(client, **params: object) -> str:
    response = client.get(reverse("gallery:index"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_front_page_shows_cards_with_image_facts_and_links(client, public: Gallery, build: Build) -> None:
    page = front(client)
    assert f'<img src="{public.url}_build/{build.id}/card.png" alt="Share card of Chinook"' in page
    assert 'loading="lazy"' in page
    assert f'href="/g/{public.id}/"' in page
    assert "2 tables · 3,850 rows" in page and "Album (347)" in page
    assert "datasette-pretty-json" in page
    assert f'href="{public.url}">Open</a>' in page


@pytest.mark.parametrize(
    ("q", "found"),
    [("chinook", True), ("MUSIC", True), ("track", True), ("album", True), ("invoices", False)],
    ids=["title", "description-any-case", "table-name", "table-name-lowercase", "nothing"],
)
def test_the_front_page_searches_titles_descriptions_and_table_names(client, public: Gallery, q, found) -> None:
    make_public_gallery("Other", "unrelated", [{"name": "Weather", "rows": 1, "columns": []}])
    page = front(client, q=q)
    assert (f"/g/{public.id}/" in page) is found
    assert "Other" not in page
    if not found:
        assert "No gallery matches “invoices”" in page and "see every gallery" in page


def test_the_front_page_paginates_and_keeps_the_search_in_page_links(client, db) -> None:
    for number in range(14):
        make_public_gallery(f"Birds {number:02}")
    make_public_gallery("Fish")
    first = front(client, q="birds")
    assert "14 galleries matching “birds”" in first
    assert "Page 1 of 2" in first
    assert first.count('class="card gallery-card"') == 12
    assert 'href="?q=birds&amp;page=2"' in first
    second = front(client, q="birds", page=2)
    assert second.count('class="card gallery-card"') == 2
    assert "Fish" not in first + second


def test_an_empty_front_page_says_how_to_publish(client, db) -> None:
    page = front(client)
    assert "No galleries are published yet" in page
    assert f'href="{reverse("gallery:publish")}"' in page


# --- Headers and /embed.js ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/publish/", "/plugins/"])
def test_app_pages_may_not_be_framed(client, db, path: str) -> None:
    response = client.get(path)
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"].split("; ")
    assert response["X-Frame-Options"] == "DENY"


def test_gallery_origins_carry_no_app_framing_headers(content_client, bundle) -> None:
    response = content_client.get("/")
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert "frame-ancestors 'none'" not in response.get("Content-Security-Policy", "")


def test_embed_js_is_short_cached_javascript_accepting_only_gallery_origins(client, db, settings) -> None:
    settings.CONTENT_PORT = "8123"
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    body = response.content.decode()
    assert '"glasshouse:resize"' in body
    assert "localhost:8123$" in body
    assert "iframe[data-glasshouse-embed]" in body
    assert "frame.contentWindow !== source" in body
