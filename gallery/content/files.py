"""Stored files, streamed or handed to nginx: the fixed content type, the ETag, the Brotli or gzip copy a build's manifest lists."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import parse_etags
from werkzeug.datastructures import Range
from werkzeug.http import parse_range_header

from builder.csp import gallery_policy
from builder.download import download_filename
from builder.manifest import Manifest
from builder.storage import MissingKey, Storage, StorageError, check_key, compressible, content_type_for
from gallery.content.pages import not_found, storage_unavailable, with_headers
from gallery.storage import get_storage

logger = logging.getLogger(__name__)


_CHUNK = 64 * 1024


def serve_key(
    request: HttpRequest,
    key: str,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
    *,
    build_id: str,
) -> HttpResponseBase:
    """Stream storage ``key`` with its fixed content type, or answer 206/304/404/416/503.

    A GET without ``Range`` gets a stored copy of ``key`` that the manifest of ``build_id``
    (the build being served) lists, when its ``Accept-Encoding`` allows it (``choose_encoding``:
    ``<key>.br`` before ``<key>.gz`` at equal q-values): ``Content-Encoding: br`` or ``gzip``,
    ``key``'s content type, and an ETag of its own (one per stored key). HEAD and requests with
    a ``Range`` get the identity bytes. Every answer for a compressible key
    (``builder.storage.compressible``) carries ``Vary: Accept-Encoding``; every answer about the
    file (200, 206, 416, HEAD, the redirect; not 304) carries ``Accept-Ranges: bytes``.

    Ranges (RFC 9110, section 14; ``requested_range``): a GET asking for one byte range, with no
    ``If-Range`` or one naming this answer's ETag, gets ``206 Partial Content`` with those bytes
    only (``Storage.open_range``: the store reads only them), ``Content-Range: bytes
    <first>-<last>/<size>`` and their ``Content-Length``; a range that starts at or past the end
    gets ``416`` with ``Content-Range: bytes */<size>`` and no body. Several ranges, a malformed
    header, another unit or an ``If-Range`` that does not match get the whole file (200). Other
    headers (ETag, Cache-Control, Vary, ``extra_headers``) are those of a 200.

    With ``CONTENT_ACCEL_REDIRECT`` set (production, behind deploy/nginx/content.conf), a GET is
    answered with no body and ``X-Accel-Redirect: <prefix><key, percent-encoded>``: nginx fetches
    the bytes from S3, forwarding the request's ``Range`` (S3 answers 206 or 416 itself), and
    keeps this answer's content type and headers. Storage is not touched then; a missing key is
    S3's 404, which nginx turns into its own. HEAD is still answered here, with the size from
    storage.
    """
    try:
        check_key(key)
    except ValueError:
        return not_found()
    content_type = content_type_for(key)
    head = request.method == "HEAD"
    varies = compressible(key)
    stored, encoding = key, IDENTITY
    if varies and not head and "Range" not in request.headers:
        serving = build_serving(build_id)
        copies = {coding: copy for coding, copy in (("br", serving.brotli.get(key)), ("gzip", serving.gzip.get(key))) if copy}
        encoding = choose_encoding(request.headers.get("Accept-Encoding"), copies)
        stored = copies.get(encoding, key)
    headers = {
        "Cache-Control": cache_control,
        # Keys under builds/<id>/, runtime/ and wheels/ never change, so the stored key names the bytes.
        "ETag": etag(stored),
        **({"Vary": "Accept-Encoding"} if varies else {}),
        **(extra_headers or {}),
    }
    if headers["ETag"] in parse_etags(request.headers.get("If-None-Match", "")):
        return with_headers(HttpResponse(status=304), headers)
    headers["Accept-Ranges"] = "bytes"
    if encoding != IDENTITY:
        headers["Content-Encoding"] = encoding
    key = stored
    if settings.CONTENT_ACCEL_REDIRECT and not head:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.CONTENT_ACCEL_REDIRECT + quote(key)
        return with_headers(response, headers)
    wanted = None
    if not head:
        wanted = requested_range(request.headers.get("Range"), request.headers.get("If-Range"), headers["ETag"])
    storage = get_storage()
    answer: HttpResponseBase | FileResponse | StreamingHttpResponse
    try:
        if wanted is not None:
            return with_headers(_partial(storage, key, wanted, content_type), headers)
        local = storage.local_path(key)
        if local is not None:
            fh = _open_local(key, local)
            size = os.fstat(fh.fileno()).st_size
            if head:
                fh.close()
                answer = HttpResponse(content_type=content_type)
            else:
                answer = FileResponse(fh, content_type=content_type)
                # FileResponse names the file; bundle files are shown inline, under the request's URL.
                del answer["Content-Disposition"]
        else:
            size = storage.size(key)
            if head:
                answer = HttpResponse(content_type=content_type)
            else:
                answer = StreamingHttpResponse(
                    _stream(storage.open(key)), content_type=content_type
                )
    except MissingKey:
        return not_found()
    except StorageError as exc:
        return storage_unavailable(key, exc)
    answer["Content-Length"] = str(size)
    return with_headers(answer, headers)


def requested_range(range_header: str | None, if_range: str | None, current_etag: str) -> Range | None:
    """The one byte range a GET asks for (RFC 9110, section 14.2), or ``None``: answer with the whole file.

    ``range_header`` and ``if_range`` are the request's ``Range`` and ``If-Range`` (``None``:
    absent); ``current_etag`` is the ETag the answer would carry. Parsed by werkzeug
    (``parse_range_header``): ``None`` for no header, a malformed one (``bytes=5-3`` included),
    another unit than ``bytes``, or several ranges, all of which a server may ignore. An
    ``If-Range`` must name ``current_etag`` exactly (section 13.1.5: strong comparison, so a
    weak tag never matches); a date never matches, since no ``Last-Modified`` is sent.
    ``"bytes=0-15"`` -> ``Range("bytes", [(0, 16)])`` (werkzeug's ranges end exclusive);
    ``"bytes=-100"`` -> ``Range("bytes", [(-100, None)])``.
    """
    if if_range is not None and if_range.strip() != current_etag:
        return None
    wanted = parse_range_header(range_header)
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return None
    return wanted


def byte_span(wanted: Range, size: int) -> tuple[int, int] | None:
    """The bytes of a ``size``-byte file that ``wanted`` selects: ``(start, stop)``, stop exclusive.

    ``wanted`` comes from ``requested_range``. ``None`` when the range is not satisfiable (416):
    it starts at or past the end, or the file is empty. An end past the file's is cut at it, and
    a suffix range (``bytes=-N``) longer than the file selects all of it (RFC 9110, section
    14.1.3), which werkzeug's ``range_for_length`` alone would call unsatisfiable.
    """
    ((start, stop),) = wanted.ranges
    if start < 0:
        start = max(start, -size)
    return Range("bytes", [(start, stop)]).range_for_length(size)


def _partial(storage: Storage, key: str, wanted: Range, content_type: str) -> HttpResponseBase:
    """The 206 answer with the bytes of ``key`` that ``wanted`` selects, or the 416 one.

    Raises ``MissingKey`` and ``StorageError``.
    """
    size = storage.size(key)
    span = byte_span(wanted, size)
    if span is None:
        refusal = HttpResponse(status=416, content_type=content_type)
        refusal["Content-Range"] = f"bytes */{size}"
        return refusal
    start, stop = span
    answer = StreamingHttpResponse(_stream(storage.open_range(key, start, stop)), status=206, content_type=content_type)
    answer["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    answer["Content-Length"] = str(stop - start)
    return answer


def _open_local(key: str, path: os.PathLike[str]) -> BinaryIO:
    try:
        # Left open on purpose: FileResponse closes it when the response is done.
        return open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise MissingKey(key) from exc
    except OSError as exc:
        raise StorageError(f"could not read {key}: {exc}") from exc


def _stream(body: BinaryIO) -> Iterator[bytes]:
    """Yield ``body`` in 64 KiB chunks, closing it at the end (or when the response is closed)."""
    try:
        while chunk := body.read(_CHUNK):
            yield chunk
    finally:
        body.close()


def etag(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class BuildServing:
    """What the content origin needs from a build's ``manifest.json``.

    ``policy``: its ``Content-Security-Policy``; ``gzip``: storage key -> key of its stored
    gzip copy, for every ``files`` entry with a ``gzip`` record (``builder.gzip_copies``);
    ``brotli``: the same for the Brotli copies (``builder.brotli_copies``; none in builds made
    before them); ``download_filename``: what a reader's browser saves its zip as
    (``builder.download.download_filename``).
    """

    policy: str
    gzip: dict[str, str]
    brotli: dict[str, str]
    download_filename: str


#: ``build_serving``'s memory: build id -> what its manifest says. A build's manifest never
#: changes, and the builds a process serves are few, so entries are never evicted.
_BUILDS: dict[str, BuildServing] = {}


def build_serving(build_id: str) -> BuildServing:
    """Read ``builds/<build_id>/manifest.json`` once per build and process (see ``BuildServing``).

    A build from before the manifest recorded its policy gets ``gallery_policy`` of its
    manifest's ``plugins``. When the manifest cannot be read or names an unknown plugin,
    the answer gets the stricter policy of a gallery without plugins, no compressed copies and
    the zip name ``data-<build_id>.zip`` (logged, not remembered): a plugin's map tiles may
    then not load, but nothing is allowed that the build did not ask for.
    """
    if build_id in _BUILDS:
        return _BUILDS[build_id]
    key = f"builds/{build_id}/manifest.json"
    try:
        with get_storage().open(key) as fh:
            manifest = Manifest.from_json(fh.read(), key)
        policy = manifest.content_security_policy or gallery_policy(manifest.plugins)
        gzipped = {entry.key: entry.gzip.key for entry in manifest.files if entry.gzip}
        brotli = {entry.key: entry.brotli.key for entry in manifest.files if entry.brotli}
    except (StorageError, MissingKey, ValueError) as exc:  # InvalidManifest and UnknownPlugin are ValueErrors
        logger.error("no policy for build %s (%s): serving the policy of a gallery without plugins", build_id, exc)
        return BuildServing(
            policy=gallery_policy(()), gzip={}, brotli={}, download_filename=download_filename("", build_id)
        )
    _BUILDS[build_id] = BuildServing(
        policy=policy, gzip=gzipped, brotli=brotli, download_filename=download_filename(manifest.database.name, build_id)
    )
    return _BUILDS[build_id]


def build_policy(build_id: str) -> str:
    """The ``Content-Security-Policy`` the build's ``manifest.json`` records (``content_security_policy``; ``build_serving``)."""
    return build_serving(build_id).policy


#: The content coding of the identity bytes (no compression).
IDENTITY = "identity"
#: The codings stored copies may have, in the order preferred at equal q-values: the smaller copy first.
PREFERRED_CODINGS = ("br", "gzip", IDENTITY)
#: Other names a client may use for a coding (RFC 9110, section 8.4.1.3: "x-gzip" is "gzip").
_ALIASES = {"x-gzip": "gzip"}
#: A q-value (RFC 9110, section 12.4.2): 0 to 1, at most three decimals.
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
#: What a coding that is acceptable only because nothing excludes it weighs: less than any q-value above 0.
_IMPLICIT = 0.0001


def accept_encoding_qualities(accept_encoding: str) -> dict[str, float]:
    """The q-values of an ``Accept-Encoding`` value (RFC 9110, section 12.5.3): ``{coding, lower case: q}``.

    A coding without ``q`` weighs 1; an unreadable q-value counts as 0 (not acceptable), so a
    malformed preference never widens what is sent. Aliases are read as their coding
    (``x-gzip`` is ``gzip``, unless ``gzip`` is named too); a coding named twice keeps its last
    q-value. ``"gzip, br;q=0.5, *;q=0"`` -> ``{"gzip": 1.0, "br": 0.5, "*": 0.0}``.
    """
    qualities: dict[str, float] = {}
    aliases: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if not coding:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.fullmatch(value) else 0.0
        coding = coding.lower()
        if coding in _ALIASES:
            aliases[_ALIASES[coding]] = quality
        else:
            qualities[coding] = quality
    return {**aliases, **qualities}


def choose_encoding(accept_encoding: str | None, stored: Collection[str]) -> str:
    """The content coding to answer with: one of ``stored`` (codings with a stored copy, e.g. ``{"br", "gzip"}``) or ``"identity"``.

    ``accept_encoding`` is the request's ``Accept-Encoding`` (``None``: the request had none).
    RFC 9110, section 12.5.3: a coding the value names weighs its q-value, one it does not name
    weighs ``*``'s (0 without ``*``), and q=0 means "not acceptable"; identity is acceptable
    unless ``identity;q=0``, or ``*;q=0`` without an ``identity`` entry, excludes it, and
    without an entry of its own it comes after every coding named with a q-value above 0. The
    acceptable candidate with the highest q-value wins; at equal q-values the smaller copy
    (``PREFERRED_CODINGS``: br, gzip, identity). No header, or an empty one, gets identity: a
    client that names no coding may not decode one. When nothing is acceptable (``*;q=0``
    with no copy allowed by name) the answer is identity too, as RFC 9110 allows, rather
    than a 406 no browser would show.

    ``"gzip, deflate, br, zstd"`` (a browser over HTTPS) -> ``"br"``; ``"gzip, deflate"`` (over
    plain HTTP) -> ``"gzip"``; ``"br;q=0, gzip"`` -> ``"gzip"``; ``"gzip;q=0.5, identity"`` -> ``"identity"``.
    """
    if not accept_encoding:
        return IDENTITY
    qualities = accept_encoding_qualities(accept_encoding)
    anything = qualities.get("*")
    weights: dict[str, float] = {}
    for coding in PREFERRED_CODINGS:
        if coding == IDENTITY:
            weights[coding] = qualities.get(IDENTITY, _IMPLICIT if anything != 0.0 else 0.0)
        elif coding in stored:
            weights[coding] = qualities.get(coding, anything or 0.0)
    best = max(weights.values())
    if best <= 0:
        return IDENTITY
    return next(coding for coding in PREFERRED_CODINGS if weights.get(coding) == best)
