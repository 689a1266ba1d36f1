"""The gallery origins' Content-Security-Policy: one policy per build, from the catalog's per-plugin sources."""

from __future__ import annotations

import pytest

from builder.catalog import InvalidPolicySource, UnknownPlugin, check_plugin_sources, load_catalog
from builder.csp import BASE_DIRECTIVES, gallery_policy, security_headers


def directives(policy: str) -> dict[str, list[str]]:
    """``"a x y; b z"`` -> ``{"a": ["x", "y"], "b": ["z"]}``."""
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        assert name not in parsed, f"{name} twice in {policy}"
        parsed[name] = values
    return parsed


def test_a_gallery_without_plugins_gets_only_its_own_origin_plus_what_pyodide_and_datasette_need() -> None:
    policy = directives(gallery_policy(()))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", "'wasm-unsafe-eval'", "'unsafe-inline'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["*"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert not any(source.startswith("http") for values in policy.values() for source in values)


@pytest.mark.parametrize(
    ("plugins", "directive", "source"),
    [
        (("datasette-cluster-map",), "img-src", "https://*.tile.openstreetmap.org"),
        (("datasette-leaflet-geojson",), "img-src", "https://*.tile.openstreetmap.org"),
        (("datasette-vega",), "script-src", "'unsafe-eval'"),
        (("datasette-dashboards",), "script-src", "'unsafe-eval'"),
        (("datasette-youtube-embed",), "img-src", "https://i.ytimg.com"),
        (("datasette-youtube-embed",), "frame-src", "https://www.youtube-nocookie.com"),
        (("datasette-youtube-embed",), "script-src", "https://www.youtube.com"),
        (("datasette-mp3-audio",), "media-src", "https:"),
    ],
)
def test_a_plugin_adds_the_sources_the_catalog_lists_for_it(
    plugins: tuple[str, ...], directive: str, source: str
) -> None:
    assert source in directives(gallery_policy(plugins))[directive]
    assert source not in directives(gallery_policy(())).get(directive, [])


def test_a_directive_the_base_policy_leaves_out_starts_from_default_src_and_comes_last() -> None:
    """frame-src and media-src fall back to default-src; once sent they replace it, so 'self' stays."""
    assert not {"frame-src", "media-src"} & set(directives(gallery_policy(())))
    policy = directives(gallery_policy(("datasette-youtube-embed", "datasette-mp3-audio")))
    assert policy["frame-src"] == ["'self'", "https://www.youtube-nocookie.com", "https://www.youtube.com"]
    assert policy["media-src"] == ["'self'", "https:"]
    assert list(policy)[: len(BASE_DIRECTIVES)] == list(BASE_DIRECTIVES)
    assert set(list(policy)[len(BASE_DIRECTIVES) :]) == {"frame-src", "media-src"}


def test_sources_of_several_plugins_are_merged_once_in_a_stable_order() -> None:
    both = gallery_policy(("datasette-leaflet-geojson", "datasette-cluster-map", "datasette-vega"))
    assert both == gallery_policy(("datasette-vega", "datasette-cluster-map", "datasette-leaflet-geojson"))
    assert directives(both)["img-src"].count("https://*.tile.openstreetmap.org") == 1
    assert list(directives(both)) == list(BASE_DIRECTIVES)


def test_an_unknown_plugin_has_no_policy() -> None:
    with pytest.raises(UnknownPlugin, match="datasette-nope"):
        gallery_policy(("datasette-nope",))


def test_every_catalog_entrys_sources_pass_the_check() -> None:
    for plugin in load_catalog().values():
        assert check_plugin_sources(plugin.name, dict(plugin.csp)) == dict(plugin.csp)


@pytest.mark.parametrize(
    "sources",
    [
        {"img-src": ["*"]},
        {"img-src": ["http://tiles.example.com"]},
        {"script-src": ["'unsafe-hashes'"]},
        {"script-src": ["https://cdn.example.com; object-src *"]},
        {"frame-ancestors": ["https://example.com"]},
        {"default-src": ["https://example.com"]},
        {"img-src": ["https:"]},
        {"script-src": ["https:"]},
        {"frame-src": ["https:"]},
        {"media-src": ["http:"]},
        {"media-src": ["*"]},
    ],
)
def test_a_catalog_entry_cannot_widen_the_policy_beyond_https_hosts_and_unsafe_eval(sources: dict) -> None:
    """Nor beyond any https host, which only media-src may take (audio the publisher's data names)."""
    with pytest.raises(InvalidPolicySource, match="datasette-x"):
        check_plugin_sources("datasette-x", sources)


def test_an_unlisted_gallery_sends_no_referrer() -> None:
    policy = gallery_policy(())
    assert dict(security_headers(policy, unlisted=True)) == {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    assert dict(security_headers(policy, unlisted=False))["Referrer-Policy"] == "strict-origin-when-cross-origin"


@pytest.mark.parametrize("plugins", [(), *((name,) for name in sorted(load_catalog()))], ids=lambda p: p[0] if p else "none")
def test_every_gallery_policy_lets_the_page_load_its_own_web_app_manifest_and_icons(plugins: tuple[str, ...]) -> None:
    # No manifest-src: it falls back to default-src, 'self', so /manifest.webmanifest loads;
    # its icons are images of the same origin. A plugin may not add either directive.
    policy = directives(gallery_policy(plugins))
    assert "manifest-src" not in policy
    assert policy["default-src"] == ["'self'"]
    assert "'self'" in policy["img-src"]
