"""``gallery.embed``: gallery URLs of every kind, the snippet, heights, and the oEmbed payload."""

from __future__ import annotations

import re

import pytest

from gallery import embed
from gallery.embed import EmbedTarget, InvalidGalleryURL, parse_gallery_url

GID = "abc123def456"
BID = "0123456789abcdef"


@pytest.fixture(autouse=True)
def _origins(settings) -> None:
    settings.CONTENT_DOMAIN = "localhost"
    settings.CONTENT_SCHEME = "http"
    settings.CONTENT_PORT = "8000"
    settings.APP_URL = "http://127.0.0.1:8000"
    settings.APP_HOSTS = ["glasshouse.example"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"http://{GID}.localhost:8000/", EmbedTarget(GID, "/")),
        (f"http://{GID}.localhost:8000", EmbedTarget(GID, "/")),
        (f"http://{GID}.localhost:8000/chinook/Album", EmbedTarget(GID, "/chinook/Album")),
        (
            f"http://{GID}.localhost:8000/chinook/Album?_sort=Title&ArtistId__exact=1#fragment",
            EmbedTarget(GID, "/chinook/Album?_sort=Title&ArtistId__exact=1"),
        ),
        (f"http://{GID}.localhost:8000/chinook/Album/12", EmbedTarget(GID, "/chinook/Album/12")),
        (
            f"http://{GID}.localhost:8000/chinook?sql=select+1",
            EmbedTarget(GID, "/chinook?sql=select+1"),
        ),
        (f"http://{GID}.localhost:8000/chinook/top_albums?n=5", EmbedTarget(GID, "/chinook/top_albums?n=5")),
        (f"http://{GID}--{BID}.localhost:8000/chinook/Album", EmbedTarget(GID, "/chinook/Album", BID)),
        (
            f"http://{GID}.localhost:8000/-/embed/chinook/Album?_sort=Title&_glasshouse_chrome=1&_glasshouse_mode=worker",
            EmbedTarget(GID, "/chinook/Album?_sort=Title", chrome=True),
        ),
        (f"http://{GID}--{BID}.localhost:8000/-/embed/", EmbedTarget(GID, "/", BID)),
        (f"http://127.0.0.1:8000/g/{GID}/", EmbedTarget(GID, "/")),
        (f"https://glasshouse.example/g/{GID}/report/", EmbedTarget(GID, "/")),
        (f"  https://{GID}.LOCALHOST/chinook  ", EmbedTarget(GID, "/chinook")),
    ],
    ids=[
        "home", "home-no-slash", "table", "filtered-sorted-table", "row", "sql-query", "canned-query",
        "pinned", "embed-url-with-chrome", "pinned-embed", "app-page", "app-page-other-host", "blanks-and-case",
    ],
)  # fmt: skip
def test_it_parses_every_kind_of_gallery_url(url: str, expected: EmbedTarget) -> None:
    assert parse_gallery_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "not an http"),
        ("ftp://abc123def456.localhost/", "not an http"),
        ("http://example.com/chinook", "not a Glasshouse gallery"),
        ("http://www.localhost:8000/", "not a gallery origin"),
        ("http://a.abc123def456.localhost:8000/", "not a gallery origin"),
        ("http://abc123def456--short.localhost:8000/", "not a gallery origin"),
        ("http://127.0.0.1:8000/publish/", "not a gallery's"),
        ("http://abc123def456.localhost:port/", "invalid port"),
    ],
)
def test_a_url_that_names_no_gallery_is_refused_with_what_was_expected(url: str, message: str) -> None:
    with pytest.raises(InvalidGalleryURL, match=message) as caught:
        parse_gallery_url(url)
    assert "expected a gallery address such as" in str(caught.value)


def test_embed_urls_keep_the_view_and_add_the_chrome_switch() -> None:
    assert EmbedTarget(GID, "/chinook/Album?_sort=Title").embed_url == (
        f"http://{GID}.localhost:8000/-/embed/chinook/Album?_sort=Title"
    )
    assert EmbedTarget(GID, "/", BID, chrome=True).embed_url == (
        f"http://{GID}--{BID}.localhost:8000/-/embed/?_glasshouse_chrome=1"
    )
    # Parsing an embed URL gives back the same embed URL.
    url = f"http://{GID}.localhost:8000/-/embed/chinook/Album?_sort=Title&_glasshouse_chrome=1"
    assert parse_gallery_url(url).embed_url == url


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ("Album", "/chinook/Album"),
        ("table/with/slashes.csv", "/chinook/table~2Fwith~2Fslashes~2Ecsv"),
        ("Table With Space In Name", "/chinook/Table+With+Space+In+Name"),
        ("café", "/chinook/caf~C3~A9"),
    ],
)
def test_table_views_use_datasettes_tilde_encoding(table: str, path: str) -> None:
    assert embed.table_view("chinook", table) == path


def test_query_views_carry_their_filled_parameters() -> None:
    assert embed.query_view("chinook", "by artist", {"artist": "AC/DC", "limit": ""}) == (
        "/chinook/by+artist?artist=AC%2FDC"
    )


def test_named_parameters_come_from_the_sql_in_order_without_string_literals_or_casts() -> None:
    sql = "select * from t where a = :artist and b like :q || ':not_me' and c::text = :artist"
    assert embed.named_parameters(sql) == ["artist", "q"]


def test_the_snippet_is_a_sandboxed_lazy_iframe_with_a_fixed_height() -> None:
    snippet = embed.embed_snippet(EmbedTarget(GID, "/chinook/Album"), title="Chinook", height=420, fit_content=False)
    assert snippet == (
        f'<iframe src="http://{GID}.localhost:8000/-/embed/chinook/Album" title="Chinook" '
        f'sandbox="{embed.SANDBOX}" loading="lazy" width="100%" height="420" '
        'style="border:0;width:100%;height:420px" data-glasshouse-embed></iframe>'
    )
    assert "allow-top-navigation" not in snippet
    assert "<script" not in snippet


def test_a_fit_content_snippet_adds_the_sizing_script_from_the_app_origin() -> None:
    snippet = embed.embed_snippet(EmbedTarget(GID), title="Chinook", height=600, fit_content=True)
    assert snippet.endswith('\n<script async src="http://127.0.0.1:8000/embed.js"></script>')


def test_the_snippet_escapes_a_hostile_title_and_view() -> None:
    target = parse_gallery_url(f'http://{GID}.localhost:8000/chinook/"><b>?q="><script>alert(1)</script>')
    snippet = embed.embed_snippet(target, title='"<script>alert(1)</script>', height=300, fit_content=False)
    assert "<script" not in snippet
    assert 'title="&quot;&lt;script&gt;alert(1)&lt;/script&gt;"' in snippet
    assert "<b>" not in snippet and "/chinook/&quot;&gt;&lt;b&gt;" in snippet
    assert snippet.count('"') == 2 * 7  # seven attributes with values, none broken open


@pytest.mark.parametrize("height", [0, -5, 1.5, "600"])
def test_the_snippet_refuses_a_height_that_is_not_a_positive_integer(height: object) -> None:
    with pytest.raises(ValueError, match="positive number of pixels"):
        embed.embed_snippet(EmbedTarget(GID), title="x", height=height, fit_content=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "height"), [(None, 600), ("", 600), ("420", 420), ("420px", 420), (" 100 ", 100)])
def test_heights_from_the_panel_are_parsed(value: str | None, height: int) -> None:
    assert embed.clean_height(value) == height


@pytest.mark.parametrize("value", ["99", "5001", "tall", "-300", "1e3"])
def test_heights_out_of_range_are_refused_with_the_range(value: str) -> None:
    with pytest.raises(ValueError, match="from 100 to 5000"):
        embed.clean_height(value)


def test_the_origin_pattern_matches_live_and_pinned_gallery_origins_only() -> None:
    pattern = re.compile(embed.gallery_origin_pattern())
    assert pattern.match(f"http://{GID}.localhost:8000")
    assert pattern.match(f"http://{GID}--{BID}.localhost:8000")
    for origin in (
        f"https://{GID}.localhost:8000",
        f"http://{GID}.localhost:8001",
        f"http://{GID}.localhost:8000.evil.example",
        f"http://{GID}.localhostx:8000",
        f"http://evil.{GID}.localhost:8000",
        "http://127.0.0.1:8000",
        "null",
    ):
        assert not pattern.match(origin), origin


def test_the_oembed_payload_scales_its_thumbnail_under_both_maxima() -> None:
    data = embed.oembed_response(
        EmbedTarget(GID), title="Chinook", maxwidth=600, maxheight=200, thumbnail_url="http://x/card.png"
    )
    assert (data["width"], data["height"]) == (600, 200)
    assert (data["thumbnail_width"], data["thumbnail_height"]) == (380, 200)
    assert 'height="200"' in data["html"]
    assert data["cache_age"] == embed.LIVE_CACHE_AGE
    pinned = embed.oembed_response(EmbedTarget(GID, build_id=BID), title="Chinook")
    assert pinned["cache_age"] == embed.PINNED_CACHE_AGE
    assert "thumbnail_url" not in pinned
