"""Bundle storage: one small interface, a local-folder backend and an S3 backend.

Keys are POSIX-style paths relative to the storage root, for example
``builds/<build-id>/index.html`` or ``wheels/<sha256>/<file>.whl`` (see DESIGN.md,
"Bundle"). Content types never come from user file names: ``content_type_for``
maps a key's role in the bundle to a fixed type.

Errors: ``StorageError`` for faults of the store itself (disk full, S3 outage);
``S3Storage`` has already retried those with backoff for its retry budget.
``MissingKey`` (a ``KeyError``) when a key does not exist.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol, Self, cast

#: Role of a file in the bundle, by suffix -> Content-Type. Anything else is
#: served as opaque bytes.
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".py": "text/x-python; charset=utf-8",
    ".json": "application/json",
    # The gallery's web app manifest (builder.web_app_manifest), the type the spec registers.
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".whl": "application/zip",
    ".db": "application/vnd.sqlite3",
}
#: Datasette's and the plugins' static files (``builds/<id>/-/static/...``,
#: ``builds/<id>/-/static-plugins/...``), by suffix; these types apply in that role only,
#: so an uploaded ``.svg`` or ``.css`` stays opaque bytes.
STATIC_CONTENT_TYPES: dict[str, str] = {
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
}
#: Files the builder draws itself, by their name directly under ``builds/<id>/``: the share card
#: and the app icons (builder.card; builder.web_app_manifest.icon_name).
BUILD_FILE_TYPES: dict[str, str] = {"card.png": "image/png", "icon-192.png": "image/png", "icon-512.png": "image/png"}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Content types worth a gzip copy (``<key>.gz``, builder.gzip_copies) and a Brotli copy (``<key>.br``,
#: builder.brotli_copies): text, wasm and SQLite. Wheels, images and fonts are compressed already; so
#: are zips in general, but see ``STORED_ZIP_SUFFIX``.
COMPRESSIBLE_TYPES = frozenset(
    {
        "text/html", "text/javascript", "text/css", "text/plain", "text/x-python", "application/json",
        "application/manifest+json", "application/wasm", "application/vnd.sqlite3", "image/svg+xml",
    }
)  # fmt: skip
#: The zips a bundle holds (the compiled standard library and the site-packages bytecode, written by
#: ``builder/runtime/node/glasshouse_bytecode.py``) have stored entries, so a copy of the whole zip
#: compresses across them: they are compressible. Wheels (``.whl``) are deflated entry by entry.
STORED_ZIP_SUFFIX = ".zip"
#: Suffix of a key's gzip copy, stored next to it.
GZIP_SUFFIX = ".gz"
#: Suffix of a key's Brotli copy, stored next to it.
BROTLI_SUFFIX = ".br"
#: The ``Content-Encoding`` of a copy, by its suffix.
COPY_ENCODINGS = {GZIP_SUFFIX: "gzip", BROTLI_SUFFIX: "br"}

logger = logging.getLogger(__name__)

#: S3 error codes that say the store is failing or overloaded, not that the request is wrong.
RETRYABLE_S3_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}
)
#: First pause between two tries of a storage call, and the longest, in seconds.
RETRY_FIRST_PAUSE = 0.5
RETRY_MAX_PAUSE = 8.0


class StorageError(Exception):
    """The store failed (I/O error, network fault, outage). Transient: retry later."""


class MissingKey(KeyError):
    """The key does not exist in the store."""


def content_type_for(key: str) -> str:
    """Return the fixed Content-Type for a bundle key, chosen by its suffix.

    The suffix is set by the builder (``data/<name>.db``, ``sw.js``...), never
    taken from an uploaded file name. Images, fonts and CSS get their types only
    as Datasette's static files (``STATIC_CONTENT_TYPES``) or as files the builder
    draws (``BUILD_FILE_TYPES``, e.g. ``builds/<id>/card.png``).
    """
    suffix = PurePosixPath(key).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    parts = key.split("/")
    if len(parts) > 4 and parts[0] == "builds" and parts[2] == "-" and parts[3] in ("static", "static-plugins"):
        return STATIC_CONTENT_TYPES.get(suffix, DEFAULT_CONTENT_TYPE)
    if len(parts) == 3 and parts[0] == "builds" and parts[2] in BUILD_FILE_TYPES:
        return BUILD_FILE_TYPES[parts[2]]
    return DEFAULT_CONTENT_TYPE


def compressible(key: str) -> bool:
    """Whether ``key`` is worth compressed copies: its content type (``content_type_for``) is in
    ``COMPRESSIBLE_TYPES``, or it is a ``.zip`` (``STORED_ZIP_SUFFIX``; wheels, ``.whl``, are not)."""
    return content_type_for(key).partition(";")[0] in COMPRESSIBLE_TYPES or key.endswith(STORED_ZIP_SUFFIX)


def _object_headers(key: str) -> dict[str, str]:
    """S3 metadata of ``key``: its content type; a gzip (``.gz``) or Brotli (``.br``) copy of a
    compressible key is that key's type, with ``ContentEncoding`` ``gzip`` or ``br``.

    nginx passes the object's ``Content-Encoding`` on (deploy/nginx/content.conf), and with it
    set its own gzip filter leaves the answer alone.
    """
    for suffix, encoding in COPY_ENCODINGS.items():
        original = key.removesuffix(suffix)
        if original != key and compressible(original):
            return {"ContentType": content_type_for(original), "ContentEncoding": encoding}
    return {"ContentType": content_type_for(key)}


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key; raise ``ValueError`` otherwise."""
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in key or "\x00" in key:
        raise ValueError(f"unsafe storage key: {key!r}")
    return key


class Storage(Protocol):
    """What the builder and the content origin need from a store."""

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` with ``content_type_for(key)``."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` with ``content_type_for(key)``."""

    def exists(self, key: str) -> bool:
        """Return whether ``key`` exists."""

    def size(self, key: str) -> int:
        """Return the size of ``key`` in bytes; raise ``MissingKey`` if absent."""

    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for reading; raise ``MissingKey`` if absent."""

    def open_range(self, key: str, start: int, stop: int) -> BinaryIO:
        """Open bytes ``start`` to ``stop`` of ``key`` for reading, as the slice ``[start:stop]``.

        Offsets in bytes, ``stop`` exclusive: the body reads at most ``stop - start`` bytes, fewer
        if ``key`` ends sooner. Only those bytes are read from the store (S3: one ranged GET).
        Raises ``ValueError`` unless ``0 <= start < stop`` and ``start`` is inside ``key``
        (before its size); ``MissingKey`` if absent; ``StorageError``.
        """

    def local_path(self, key: str) -> Path | None:
        """Return a filesystem path for ``key`` if the store is local, else ``None``."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (ending in ``/``); return how many."""

    def keys(self, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix``."""

    def keys_with_mtime(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Yield ``(key, last modified)`` for every key under ``prefix``; times in POSIX seconds."""


def copy_to_file(storage: Storage, key: str, target: Path) -> None:
    """Copy the stored ``key`` into the local file ``target``, 1 MiB at a time (an upload may be 1 GB).

    Raises ``MissingKey`` and ``StorageError``.
    """
    with storage.open(key) as source, target.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


class LocalStorage:
    """Store keys as files under ``root``. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*PurePosixPath(check_key(key)).parts)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc}") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise MissingKey(key) from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise MissingKey(key) from exc

    def open_range(self, key: str, start: int, stop: int) -> BinaryIO:
        _check_span(key, start, stop)
        try:
            fh = self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise MissingKey(key) from exc
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc
        try:
            if start >= os.fstat(fh.fileno()).st_size:
                raise ValueError(f"{key}: byte {start} is past its end")
            fh.seek(start)
        except ValueError:
            fh.close()
            raise
        except OSError as exc:
            fh.close()
            raise StorageError(f"could not read {key}: {exc}") from exc
        return cast(BinaryIO, _FileSlice(fh, stop - start, key))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count

    def keys(self, prefix: str) -> Iterator[str]:
        for key, _ in self.keys_with_mtime(prefix):
            yield key

    def keys_with_mtime(self, prefix: str) -> Iterator[tuple[str, float]]:
        folder = self._path(prefix.rstrip("/"))
        if folder.is_dir():
            for p in sorted(folder.rglob("*")):
                try:
                    if p.is_file() and not p.name.startswith(".tmp-"):
                        yield p.relative_to(self.root).as_posix(), p.stat().st_mtime
                except FileNotFoundError:
                    continue  # removed meanwhile (another process's removal)


class S3Storage:
    """Store keys as objects in an S3 bucket through boto3.

    ``endpoint_url`` points at any S3 API (AWS, MinIO, moto's server); credentials
    come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` ...). ``timeout`` (seconds)
    bounds connecting and each read of one request. Faults of the store (connection
    refused or reset, timeouts, 5xx answers, throttling) are retried with exponential
    backoff (0.5 s doubling to 8 s, with jitter) for ``retry_budget`` seconds from the
    first try; then, and for any other botocore error, the call raises
    ``StorageError``. A missing key is ``MissingKey`` at once. Reading an ``open``
    object's body is not retried; a fault there raises ``StorageError`` too.
    """

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        retry_budget: float = 60.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.retry_budget = retry_budget
        self._sleep = sleep
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            # One try per call here: the retries are ours, bounded by time rather than by count.
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
            ),
        )

    @staticmethod
    def _transient(exc: BaseException) -> bool:
        """Whether ``exc`` (from botocore or boto3's transfer) is a fault of the store worth retrying."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        if isinstance(exc, S3UploadFailedError):
            # boto3's transfer wraps the ClientError it got (raised inside its ``except``).
            cause = exc.__context__
            return cause is None or S3Storage._transient(cause)
        if isinstance(exc, (BotoConnectionError, HTTPClientError)):
            return True
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return status >= 500 or status == 429 or error.get("Code", "") in RETRYABLE_S3_CODES
        return False

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        pause = RETRY_FIRST_PAUSE
        tries = 0
        while True:
            tries += 1
            try:
                return fn(*args, **kwargs)
            except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
                if isinstance(exc, ClientError):
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code in ("404", "NoSuchKey", "NotFound"):
                        raise MissingKey(what) from exc
                elapsed = time.monotonic() - started
                wait = pause * random.uniform(0.8, 1.2)
                if not self._transient(exc) or elapsed + wait > self.retry_budget:
                    gave_up = f" (gave up after {tries} tries in {elapsed:.0f} s)" if tries > 1 else ""
                    raise StorageError(f"S3 {what}: {exc}{gave_up}") from exc
                logger.warning("S3 %s failed (%s); retrying in %.1f s (try %d)", what, exc, wait, tries)
                self._sleep(wait)
                pause = min(pause * 2, RETRY_MAX_PAUSE)

    def put_file(self, key: str, path: Path) -> None:
        self._call(
            key,
            self.client.upload_file,
            str(path),
            self.bucket,
            check_key(key),
            ExtraArgs=_object_headers(key),
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(
            key,
            self.client.put_object,
            Bucket=self.bucket,
            Key=check_key(key),
            Body=data,
            **_object_headers(key),
        )

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except MissingKey:
            return False
        return True

    def size(self, key: str) -> int:
        head = self._call(key, self.client.head_object, Bucket=self.bucket, Key=check_key(key))
        return int(head["ContentLength"])

    def open(self, key: str) -> BinaryIO:
        obj = self._call(key, self.client.get_object, Bucket=self.bucket, Key=check_key(key))
        return cast(BinaryIO, _S3Body(obj["Body"], key))

    def open_range(self, key: str, start: int, stop: int) -> BinaryIO:
        from botocore.exceptions import ClientError

        _check_span(key, start, stop)
        try:
            obj = self._call(
                key, self.client.get_object, Bucket=self.bucket, Key=check_key(key), Range=f"bytes={start}-{stop - 1}"
            )
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "InvalidRange":
                raise ValueError(f"{key}: byte {start} is past its end") from exc
            raise
        # A store that ignored the Range would send the whole object: never stream that as the slice.
        if not str(obj.get("ContentRange", "")).startswith(f"bytes {start}-"):
            obj["Body"].close()
            raise StorageError(f"S3 {key}: the store answered bytes={start}-{stop - 1} without that range")
        return cast(BinaryIO, _S3Body(obj["Body"], key))

    def local_path(self, key: str) -> Path | None:
        return None

    def keys(self, prefix: str) -> Iterator[str]:
        for key, _ in self.keys_with_mtime(prefix):
            yield key

    def keys_with_mtime(self, prefix: str) -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(prefix, lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["LastModified"].timestamp()

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.keys(prefix))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._call(prefix, self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch})
        return len(keys)


def _check_span(key: str, start: int, stop: int) -> None:
    """Raise ``ValueError`` unless ``0 <= start < stop`` (``Storage.open_range``'s offsets)."""
    if not 0 <= start < stop:
        raise ValueError(f"{key}: no bytes from {start} to {stop}")


class _Closing:
    """A reader usable in ``with``: leaving the block calls its ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _FileSlice(_Closing):
    """The next ``length`` bytes of an open file (a file-like ``BinaryIO``); read faults raise ``StorageError``."""

    def __init__(self, fh: BinaryIO, length: int, key: str) -> None:
        self._fh = fh
        self._left = length
        self._key = key

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        try:
            data = self._fh.read(wanted)
        except OSError as exc:
            raise StorageError(f"could not read {self._key}: {exc}") from exc
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()


class _S3Body(_Closing):
    """An S3 object's streaming body whose read faults raise ``StorageError`` (a file-like ``BinaryIO``)."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def read(self, size: int = -1) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            return self._body.read(None if size is None or size < 0 else size)
        except (BotoCoreError, OSError) as exc:
            raise StorageError(f"S3 {self._key}: reading failed: {exc}") from exc

    def close(self) -> None:
        self._body.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)
