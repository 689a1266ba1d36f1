"""Stored files, streamed or handed to nginx: the fixed content type, the ETag, the gzip copy a build's manifest lists."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import parse_etags

from builder.csp import gallery_policy
from builder.download import download_filename
from builder.manifest import Manifest
from builder.storage import MissingKey, StorageError, check_key, compressible, content_type_for
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
    """Stream storage ``key`` with its fixed content type, or answer 304/404/503.

    A GET without ``Range`` whose ``Accept-Encoding`` allows gzip gets the stored ``<key>.gz``
    when the manifest of ``build_id`` (the build being served) lists one for ``key``:
    ``Content-Encoding: gzip``, ``key``'s content type, and an ETag of its own. Every answer
    for a compressible key (``builder.storage.compressible``) carries ``Vary: Accept-Encoding``.

    With ``CONTENT_ACCEL_REDIRECT`` set (production, behind deploy/nginx/content.conf), a GET is
    answered with no body and ``X-Accel-Redirect: <prefix><key, percent-encoded>``: nginx fetches
    the bytes from S3 (Range included) and keeps this answer's content type and headers. Storage
    is not touched then; a missing key is S3's 404, which nginx turns into its own. HEAD is still
    answered here, with the size from storage.
    """
    try:
        check_key(key)
    except ValueError:
        return not_found()
    content_type = content_type_for(key)
    head = request.method == "HEAD"
    varies = compressible(key)
    stored = key
    if (
        varies
        and not head
        and "Range" not in request.headers
        and accepts_gzip(request.headers.get("Accept-Encoding", ""))
    ):
        stored = build_serving(build_id).gzip.get(key, key)
    headers = {
        "Cache-Control": cache_control,
        # Keys under builds/<id>/, runtime/ and wheels/ never change, so the stored key names the bytes.
        "ETag": etag(stored),
        **({"Vary": "Accept-Encoding"} if varies else {}),
        **(extra_headers or {}),
    }
    if headers["ETag"] in parse_etags(request.headers.get("If-None-Match", "")):
        return with_headers(HttpResponse(status=304), headers)
    if stored != key:
        headers["Content-Encoding"] = "gzip"
    key = stored
    if settings.CONTENT_ACCEL_REDIRECT and not head:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.CONTENT_ACCEL_REDIRECT + quote(key)
        return with_headers(response, headers)
    storage = get_storage()
    answer: HttpResponseBase | FileResponse | StreamingHttpResponse
    try:
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
    gzip copy, for every ``files`` entry with a ``gzip`` record (``builder.bundle``);
    ``download_filename``: what a reader's browser saves its zip as
    (``builder.download.download_filename``).
    """

    policy: str
    gzip: dict[str, str]
    download_filename: str


#: ``build_serving``'s memory: build id -> what its manifest says. A build's manifest never
#: changes, and the builds a process serves are few, so entries are never evicted.
_BUILDS: dict[str, BuildServing] = {}


def build_serving(build_id: str) -> BuildServing:
    """Read ``builds/<build_id>/manifest.json`` once per build and process (see ``BuildServing``).

    A build from before the manifest recorded its policy gets ``gallery_policy`` of its
    manifest's ``plugins``. When the manifest cannot be read or names an unknown plugin,
    the answer gets the stricter policy of a gallery without plugins, no gzip copies and
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
    except (StorageError, MissingKey, ValueError) as exc:  # InvalidManifest and UnknownPlugin are ValueErrors
        logger.error("no policy for build %s (%s): serving the policy of a gallery without plugins", build_id, exc)
        return BuildServing(policy=gallery_policy(()), gzip={}, download_filename=download_filename("", build_id))
    _BUILDS[build_id] = BuildServing(
        policy=policy, gzip=gzipped, download_filename=download_filename(manifest.database.name, build_id)
    )
    return _BUILDS[build_id]


def build_policy(build_id: str) -> str:
    """The ``Content-Security-Policy`` the build's ``manifest.json`` records (``content_security_policy``; ``build_serving``)."""
    return build_serving(build_id).policy


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value (RFC 9110, section 12.5.3) allows gzip.

    ``gzip`` (or ``x-gzip``) with a q-value above 0, or else ``*`` with one; an empty value
    allows nothing but identity. ``"gzip, deflate, br"`` -> True; ``"gzip;q=0, *"`` -> False.
    """
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[coding.lower()] = quality
    for coding in ("gzip", "x-gzip"):
        if coding in qualities:
            return qualities[coding] > 0
    return qualities.get("*", 0.0) > 0
