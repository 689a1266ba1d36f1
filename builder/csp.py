"""The security headers of gallery origins: one Content-Security-Policy, computed here only.

Every answer on a gallery's content origin carries these headers, whoever builds it:
the server (``gallery.content``, for its own answers) and the reader's Service Worker
or worker mode's Worker (``builder/runtime/reader/js/security-headers.mjs``, ``withSecurityHeaders``, for
the pages Datasette renders in the browser). The builder records the build's policy in
``manifest.json`` (``security_headers``) and ``config.mjs`` (``securityHeaders``), so
the server and the browser send the same bytes for the same build.

The policy is ``BASE_DIRECTIVES`` plus, for each of the build's plugins, the extra
sources the plugin catalog lists for it (``csp`` in ``builder/catalog/plugins.toml``:
map tiles, for instance). The catalog checks what an entry may add when it loads
(``builder.catalog.check_plugin_sources``). Why each source is there:

- ``script-src 'wasm-unsafe-eval'``: Pyodide compiles WebAssembly (the Service Worker
  and the Worker run under the policy of their own script's answer).
- ``script-src 'unsafe-inline'``: Datasette's templates and its plugins write inline
  ``<script>`` elements whose text changes with the page (the SQL editor's set-up with
  the page's query and schema; plugins' ``extra_body_script`` with per-page JSON), so
  no list of hashes made at build time covers them. Nonces would need every template to
  mark its own scripts (Datasette has no such hook), and a nonce stamped afterwards on
  every ``<script>`` of the rendered page would admit an injected one just the same. In
  worker mode each page is written into a frame that inherits the bootstrap page's
  policy, fixed when the server answered, so a per-page nonce or hash cannot reach it
  either. What keeps data inert is Datasette's escaping; what this policy still stops is
  any script, style, image, font, frame or connection from another origin (no
  exfiltration by ``fetch`` or ``<img>``), plugins (``object-src``), ``<base>``
  hijacking and form posts elsewhere.
- ``style-src 'unsafe-inline'``: Datasette's pages and the bootstrap page use
  ``style`` attributes and ``<style>`` elements.
- ``img-src data: blob:``: Leaflet, Vega and CodeMirror draw with data: URLs; the
  worker-mode shell downloads through blob: URLs.
- ``frame-ancestors *``: any site may embed a gallery (previews excepted, which
  ``gallery.content`` narrows to ``'none'``).

A plugin's sources widen only the galleries built with it, and only by the hosts its entry
names (tiles, a video site's frames), except ``media-src https:`` for datasette-mp3-audio,
whose audio lives on whatever hosts the publisher's data names (``ANY_HTTPS_DIRECTIVES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from builder.catalog import UnknownPlugin, load_catalog

#: The policy of a gallery with no plugins: directive -> sources, in the order they are sent.
BASE_DIRECTIVES: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'", "'wasm-unsafe-eval'", "'unsafe-inline'"),
    "style-src": ("'self'", "'unsafe-inline'"),
    "img-src": ("'self'", "data:", "blob:"),
    "font-src": ("'self'", "data:"),
    "connect-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("*",),
}
#: Referrer-Policy of a listed gallery; an unlisted one sends ``no-referrer`` (its id is its secret).
LISTED_REFERRER_POLICY = "strict-origin-when-cross-origin"
UNLISTED_REFERRER_POLICY = "no-referrer"


def policy_directives(plugin_sources: Iterable[Mapping[str, Iterable[str]]]) -> dict[str, tuple[str, ...]]:
    """``BASE_DIRECTIVES`` with every mapping of ``plugin_sources`` (``{directive: sources}``) added, without repeats.

    A directive not in ``BASE_DIRECTIVES`` starts with ``default-src``'s sources and comes last,
    in the order the mappings first name it.
    """
    directives = {name: list(values) for name, values in BASE_DIRECTIVES.items()}
    for sources in plugin_sources:
        for directive, values in sources.items():
            # A directive the base policy leaves out (frame-src, media-src) falls back to
            # default-src; once sent it replaces that fallback, so it starts from default-src's
            # sources and the gallery's own origin stays allowed. It goes after the base ones.
            current = directives.setdefault(directive, list(BASE_DIRECTIVES["default-src"]))
            for value in values:
                if value not in current:
                    current.append(value)
    return {name: tuple(values) for name, values in directives.items()}


def gallery_policy(plugins: Iterable[str]) -> str:
    """The ``Content-Security-Policy`` value of a gallery built with ``plugins`` (catalog names).

    ``"default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-inline'; ...;
    frame-ancestors *"``. Raises ``builder.catalog.UnknownPlugin`` for a name not in the catalog.
    """
    catalog = load_catalog()
    unknown = sorted(set(plugins) - set(catalog))
    if unknown:
        raise UnknownPlugin(f"Unknown plugin {', '.join(unknown)}: no policy sources for it.")
    directives = policy_directives(dict(catalog[name].csp) for name in sorted(set(plugins)))
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(policy: str, *, unlisted: bool) -> list[tuple[str, str]]:
    """The headers every answer of a gallery origin carries: ``[(name, value), ...]``.

    ``policy`` is the build's ``gallery_policy``; ``unlisted`` picks ``Referrer-Policy:
    no-referrer`` (else ``strict-origin-when-cross-origin``).
    """
    return [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", UNLISTED_REFERRER_POLICY if unlisted else LISTED_REFERRER_POLICY),
    ]
