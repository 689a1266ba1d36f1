"""Glasshouse's built-in Datasette plugin: a "Report" link in the footer of every page.

Runs inside Pyodide only (it imports Datasette and Jinja). ``glasshouse_runtime.start``
registers it before Datasette starts, in every bundle, whatever plugins the publisher chose.

The link goes to ``/_report?url=<path and query of the page>`` on the gallery's own origin:
the bundle is the same on the live, pinned and preview origins, so it cannot name the app
origin. The content origin (``gallery.content``) answers ``/_report`` with a redirect to
the app's report form for the gallery; the Service Worker and the page shell leave it to the
server (``js/request-kind.mjs``, ``SERVER_PATHS``). The link opens a new tab, so a reader keeps the
gallery open and an embedded page (where the footer is shown with ``_glasshouse_chrome=1``)
does not try to frame the app origin.

Datasette's ``base.html`` includes ``_footer.html``; this plugin's ``_footer.html`` renders
whichever ``_footer.html`` would have been used (Datasette's own, or a plugin's) and adds
the link after it, so license and source lines stay as they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from datasette import hookimpl
from jinja2 import ChoiceLoader, DictLoader, PrefixLoader

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.utils.asgi import Request
    from jinja2 import Environment

#: Path of the report redirect on every gallery origin (gallery/content/route.py, js/request-kind.mjs).
REPORT_PATH = "/_report"
#: Prefix under which the footer template that would have been used stays reachable.
_ORIGINAL = "glasshouse-original"
FOOTER_TEMPLATE = (
    '{% include "' + _ORIGINAL + ':_footer.html" %}\n'
    '<span class="glasshouse-report">&middot; <a href="{{ glasshouse_report_url }}" '
    'target="_blank" rel="noopener" title="Tell the moderators about a problem with this gallery">Report</a></span>\n'
)


def report_url(path: str, query_string: str = "") -> str:
    """``/_report?url=<path>[?<query_string>]``, the page's address form-encoded (``/`` as ``%2F``).

    ``path`` is percent-encoded as in the request URL; ``query_string`` without ``?``.
    """
    page = path + (f"?{query_string}" if query_string else "")
    return f"{REPORT_PATH}?{urlencode({'url': page})}"


@hookimpl
def prepare_jinja2_environment(env: Environment, datasette: Datasette) -> None:
    """Put this plugin's ``_footer.html`` in front of Datasette's template loader."""
    original = env.loader
    if original is None:  # Datasette always gives its environment a loader
        raise RuntimeError("Datasette's Jinja environment has no template loader")
    env.loader = ChoiceLoader(
        [DictLoader({"_footer.html": FOOTER_TEMPLATE}), PrefixLoader({_ORIGINAL: original}, delimiter=":"), original]
    )


@hookimpl
def extra_template_vars(request: Request | None) -> dict[str, str]:
    """``glasshouse_report_url`` for the footer: the report link of the page being rendered."""
    if request is None:
        return {"glasshouse_report_url": REPORT_PATH}
    return {"glasshouse_report_url": report_url(request.path, request.query_string)}
