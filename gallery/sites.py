"""Which hosts are the same *site* as a browser sees it: the registrable domain (eTLD+1).

A browser shares cookies (``Domain=`` attributes, ``Clear-Site-Data: "cookies"``) and
``SameSite`` decisions across one registrable domain, so the app origin and the gallery
content origins must never share one (DESIGN.md, "Origins"). The registrable domain comes
from the Public Suffix List, ICANN and private sections alike (as browsers use it), through
tldextract's bundled snapshot: no list is fetched over the network.
"""

from __future__ import annotations

import ipaddress

import tldextract

# suffix_list_urls=(): the snapshot shipped with the pinned tldextract, never a download;
# cache_dir=None: nothing written to the home folder.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def registrable_domain(host: str) -> str:
    """Return the registrable domain of ``host`` (a host name or IP address, no port).

    ``"app.example.com"`` -> ``"example.com"``; ``"x.github.io"`` -> ``"x.github.io"``
    (``github.io`` is a private public suffix); ``"127.0.0.1"`` -> ``"127.0.0.1"`` (an IP
    address is its own site). A name under no listed suffix follows the list's default
    rule ``*`` (its last label is the public suffix): ``"glasshouse.example"`` ->
    ``"glasshouse.example"``, ``"x.localhost"`` -> ``"x.localhost"``. A name that is itself
    a public suffix (``"localhost"``, ``"github.io"``) is returned whole. Case and a
    trailing dot are ignored.
    """
    name = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    parts = _EXTRACT(name)
    if parts.suffix:
        return parts.top_domain_under_public_suffix or name
    labels = name.split(".")
    return ".".join(labels[-2:])


def same_site(host: str, other: str) -> bool:
    """Whether ``host`` and ``other`` (host names or IP addresses) have the same registrable domain."""
    return registrable_domain(host) == registrable_domain(other)
