"""The content origin: serve each gallery's bundle at ``<gallery-id>.<CONTENT_DOMAIN>``.

``ContentOriginMiddleware`` sits first in ``MIDDLEWARE``. A request whose host
(port stripped) is a subdomain of ``CONTENT_DOMAIN`` is answered here and never
reaches the app's URLs, sessions, CSRF or X-Frame-Options; so is one for the bare
``CONTENT_DOMAIN`` (404, a page saying where the app is: ``APP_URL``); every other
host passes through to the app. In production nginx serves the same map from S3.

A host label is ``<gallery-id>`` (follows ``Gallery.live_build``) or
``<gallery-id>--<build-id>`` (a pinned version: always that build, which must be a
``ready`` build of the gallery). Map, where ``<build>`` is the build the label
serves (storage keys as in DESIGN.md, "Bundle"; with ``CONTENT_ACCEL_REDIRECT`` set, nginx sends
the bytes of each key, ``_serve_key``):

=================================  ==========================================  ============
request path                       storage key                                 Cache-Control
=================================  ==========================================  ============
``/sw.js``                         ``builds/<build>/sw.js``                    no-cache
``/manifest.webmanifest``          ``builds/<build>/manifest.webmanifest``     no-cache
``/_runtime/<rest>``               ``runtime/<rest>``                          immutable
``/_wheels/<sha256>/<file>``       ``wheels/<sha256>/<file>``                  immutable
``/_build/<build>/<rest>``         ``builds/<build>/<rest>``                   immutable
``/-/static/<rest>``               ``builds/<build>/-/static/<rest>``          no-cache
``/-/static-plugins/<rest>``       ``builds/<build>/-/static-plugins/<rest>``  no-cache
``/_download/<id>.zip``            ``builds/<id>/download.zip``                no-store
``/_report?url=<page path>``       302 to the app's report form                no-cache
anything else (app deep links)     ``builds/<build>/index.html`` (+ oEmbed)    no-cache
=================================  ==========================================  ============

The bootstrap page gets an oEmbed discovery ``<link>`` for the requested URL
after its ``<head>`` tag, and the same as a ``Link`` header. ``/_download/`` serves
the origin's own build on a pinned origin and any ready build of the gallery on
its live origin: the self-host zip the build stored (``builder.download``), as an
attachment, at most ``DOWNLOAD_RATE_LIMIT`` per client address (else 429); the zip is
never served under ``/_build/``. ``/_report`` is where the "Report" link in
every page's footer points (the bundle's built-in plugin,
``builder/runtime/reader/glasshouse_report.py``): the bundle cannot name the app origin, so
this origin sends the reader to ``<APP_URL>/g/<gallery-id>/report/?url=<the page's
absolute URL on this origin>``.

A preview label ``pv-<build-id>-<expiry>-<signature>`` (``gallery.content.preview``) serves
its build as a pinned origin does, whatever its review, so a publisher and the
moderators can see a version waiting for review; a forged, malformed or expired
preview label answers 403 to every path (an expired one's ``/sw.js`` is the kill
switch). A preview answers 404 when its build is unknown or not ready, and 410 when
the gallery was taken down or deleted, or the build was rejected or its files removed
(``Build.review``, ``Build.files_deleted``). Every preview answer carries ``X-Robots-Tag: noindex``,
``Referrer-Policy: no-referrer`` (the origin is the secret), ``Content-Security-Policy:
frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (a preview is not for embedding)
and a ``private`` ``Cache-Control`` (the bootstrap page, ``/sw.js`` and ``/manifest.webmanifest``:
``private, no-store``); its bootstrap page has no oEmbed discovery.

Only an approved build (``Build.review``, ``gallery.models.approved_build``) is served on
a gallery's origin and its pinned origins. Unknown gallery, a pinned build that is unknown,
not ready or not approved, a ``/_build/`` of another build: 404. Gallery not approved, held
for review, or no live build: 404. Taken down or deleted (a tombstone): 410 on the
live origin and on every pinned origin. Wherever nothing is published (each of those
404s and 410s, and an expired preview), ``/sw.js`` is the kill-switch worker, so a reader's installed
worker empties its caches and unregisters. Only GET and HEAD (else 405). Content types come from
``builder.storage.content_type_for(key)``, never from the request. A GET without ``Range``
whose ``Accept-Encoding`` allows gzip gets the stored ``<key>.gz`` where the served build's
manifest lists one (``Content-Encoding: gzip``, the key's own type, an ETag of its own);
answers for compressible keys carry ``Vary: Accept-Encoding``. Every answer
carries ``builder.csp.security_headers`` and no cookies: ``X-Content-Type-Options:
nosniff``; the served build's ``Content-Security-Policy`` as its manifest records it
(``content_security_policy``; ``default-src 'self'`` plus what its plugins need and
``frame-ancestors *``: any site may embed a gallery, previews excepted), or the policy
of a gallery without plugins where no build is served; ``Referrer-Policy:
no-referrer`` for an unlisted gallery, read from its row on every request (so a
visibility change takes effect at once), and wherever no build is served, else
``strict-origin-when-cross-origin``. Over HTTPS every answer also carries the app origin's
``Strict-Transport-Security`` max-age (``strict_transport_security``).
"""
