"""``deploy/nginx/content.conf`` over TLS: HSTS survives X-Accel-Redirect, the Brotli and gzip copies go out
as stored, oversized cookies are cleared.

Debian's nginx runs deploy/nginx/ as written, except for what a test machine must change (TLS files,
log and data folders into ``tmp_path``, loopback ports, the bucket): the content server answers
``<gallery-id>.example-content.org`` on a loopback port with a self-signed certificate, in front
of the live server (Django, ``CONTENT_ACCEL_REDIRECT=/_s3/``, the forwarded scheme trusted as in
production) and a bucket of moto's S3 server that nginx reads anonymously (content.conf,
"Private buckets", option a). tests/deploy/test_production_shape.py runs the whole stack over
plain HTTP.
"""

from __future__ import annotations

import gzip
import http.client
import json
import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import brotli
import pytest

from builder.pyodide import PYODIDE_VERSION
from builder.storage import S3Storage, content_type_for
from tests.support.loopback import free_port
from tests.support.nginx import Nginx, find_nginx, render_deploy_config, running_nginx

pytestmark = pytest.mark.integration

CONTENT_DOMAIN = "example-content.org"
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class ContentOrigin:
    """deploy/nginx/ running on ``port`` (its 443 servers, TLS), reading store files from ``bucket``."""

    nginx: Nginx
    port: int
    bucket: str

    def get(self, host: str, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=ssl._create_unverified_context(), timeout=30
        )
        connection.request("GET", path, headers={"Host": host, "Accept-Encoding": "identity", **headers})
        response = connection.getresponse()
        return response, response.read()


def _render(folder: Path, upstream_port: int, s3_port: int, bucket: str) -> tuple[Nginx, int]:
    port = free_port()
    nginx = render_deploy_config(
        find_nginx(),
        folder,
        [
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
            ("server 127.0.0.1:9000;", f"server 127.0.0.1:{s3_port};"),
            ("proxy_set_header Host 127.0.0.1:9000;", f"proxy_set_header Host 127.0.0.1:{s3_port};"),
            ("glasshouse-bundles", bucket),
            ("listen 443 ", f"listen 127.0.0.1:{port} "),
            ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
        ],
    )
    return nginx, port


@pytest.fixture
def store_bucket(moto_s3: str) -> tuple[str, int]:
    """``(name, port)``: a bucket on moto's server whose bundle prefixes anyone (nginx) may read."""
    name = f"glasshouse-nginx-{secrets.token_hex(6)}"
    client = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": [f"arn:aws:s3:::{name}/{prefix}*" for prefix in ("builds/", "runtime/", "wheels/")],
    }
    client.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    port = urlsplit(moto_s3).port
    assert port is not None
    return name, port


@pytest.fixture
def https_content(
    tmp_path: Path, live_server: Any, transactional_db: None, settings: Any, store_bucket: tuple[str, int]
) -> Iterator[ContentOrigin]:
    """deploy/nginx/ in front of the live server as the production content origin (https, X-Accel-Redirect)."""
    settings.CONTENT_DOMAIN = CONTENT_DOMAIN
    settings.CONTENT_SCHEME = "https"
    settings.CONTENT_PORT = ""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, f".{CONTENT_DOMAIN}"]
    settings.CONTENT_ACCEL_REDIRECT = "/_s3/"
    # What an https APP_URL sets (gallery/project/settings/core.py): nginx's X-Forwarded-Proto is trusted.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = YEAR
    name, s3_port = store_bucket
    nginx, port = _render(tmp_path / "nginx", urlsplit(live_server.url).port, s3_port, name)
    with running_nginx(nginx):
        yield ContentOrigin(nginx, port, name)


def test_hsts_reaches_the_reader_on_store_files_that_nginx_sends_itself(https_content, bundle, build, gallery, moto_s3):
    """Django's answer for a store file is an X-Accel-Redirect; nginx drops its headers unless /_s3/ copies them."""
    client = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    for key, data in bundle.items():
        client.put_object(Bucket=https_content.bucket, Key=key, Body=data)
    host = f"{gallery.id}.{CONTENT_DOMAIN}"
    database = f"builds/{build.id}/data/chinook.db"

    stored, body = https_content.get(host, f"/_build/{build.id}/data/chinook.db")
    assert stored.status == 200, (body[:300], https_content.nginx.error_log)
    assert body == bundle[database], "the bytes come from the bucket, through nginx"
    assert stored.headers["Content-Type"] == content_type_for(database)
    assert stored.headers["Strict-Transport-Security"] == f"max-age={YEAR}"

    page, _ = https_content.get(host, "/")  # Django's own answer, passed through
    assert page.status == 200 and page.headers["Strict-Transport-Security"] == f"max-age={YEAR}"
    missing, _ = https_content.get(host, f"/_build/{build.id}/data/no-such.db")  # the bucket's 404, nginx's page
    assert missing.status == 404 and missing.headers["Strict-Transport-Security"] == f"max-age={YEAR}"


def test_a_browser_over_https_gets_the_stored_brotli_copy_and_one_refusing_br_the_gzip_one(
    https_content, bundle, build, gallery, storage, moto_s3
):
    """What a browser over HTTPS sends ("br" included) reaches S3's ``<key>.br`` object, sent as it is stored."""
    bucket = S3Storage(https_content.bucket, endpoint_url=moto_s3, region="us-east-1")
    wasm = f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm"
    database = f"builds/{build.id}/data/chinook.db"
    originals = {wasm: b"\x00asm\x01\x00\x00\x00" + b"\x01\x60\x00\x00" * 4000,
                 database: bundle[database] + b"CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT);" * 300}  # fmt: skip
    # Django reads the manifest (its own storage); nginx reads the objects, stored as a build stores them.
    manifest_key = f"builds/{build.id}/manifest.json"
    manifest = json.loads(storage.open(manifest_key).read())
    for entry in manifest["files"]:
        if entry["key"] in originals:
            data = originals[entry["key"]]
            entry["size"] = len(data)
            for suffix, field, compress in ((".gz", "gzip", lambda d: gzip.compress(d, mtime=0)), (".br", "brotli", brotli.compress)):
                bucket.put_bytes(entry["key"] + suffix, copy := compress(data))
                entry[field] = {"key": entry["key"] + suffix, "size": len(copy)}
    storage.put_bytes(manifest_key, json.dumps(manifest).encode())
    for key, data in {**bundle, **originals, manifest_key: json.dumps(manifest).encode()}.items():
        bucket.put_bytes(key, data)
    host = f"{gallery.id}.{CONTENT_DOMAIN}"
    urls = {wasm: f"/_{wasm}", database: f"/_build/{build.id}/data/chinook.db"}
    for key, url in urls.items():
        for accept, encoding, decode in (
            ("gzip, deflate, br, zstd", "br", brotli.decompress),
            ("br;q=0, gzip", "gzip", gzip.decompress),
            ("identity", None, lambda data: data),
        ):
            response, body = https_content.get(host, url, **{"Accept-Encoding": accept})
            assert response.status == 200, (body[:300], https_content.nginx.error_log)
            # One Content-Encoding, the object's: nginx did not compress the stored copy again.
            assert response.headers.get_all("Content-Encoding") == ([encoding] if encoding else None), (url, accept)
            assert decode(body) == originals[key], (url, accept)
            assert response.headers["Content-Type"] == content_type_for(key)
            assert "Accept-Encoding" in response.headers["Vary"]
            assert response.headers["Strict-Transport-Security"] == f"max-age={YEAR}"


@pytest.fixture
def content_origin(tmp_path: Path) -> Iterator[ContentOrigin]:
    """deploy/nginx/ alone: no Django behind it (what is tested is answered by nginx itself)."""
    nginx, port = _render(tmp_path / "nginx", free_port(), free_port(), "glasshouse-test")
    with running_nginx(nginx):
        yield ContentOrigin(nginx, port, "glasshouse-test")


@pytest.mark.parametrize("cookies", [["big=" + "x" * 65536], [f"c{n}={'x' * 4000}" for n in range(16)]])
def test_cookies_too_large_for_nginx_get_an_answer_that_clears_them(content_origin, cookies):
    """One 64 KB cookie, or 64 KB of the 4 KB cookies browsers allow: nginx's 494 becomes a page that clears them."""
    response, body = content_origin.get(f"abcdefghijkl.{CONTENT_DOMAIN}", "/sw.js", Cookie="; ".join(cookies))
    assert response.status == 400
    assert response.headers["Clear-Site-Data"] == '"cookies"'
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"reload the page" in body
    # A usual cookie jar still reaches the server (Django, absent here: 502).
    ordinary, _ = content_origin.get(f"abcdefghijkl.{CONTENT_DOMAIN}", "/sw.js", Cookie="a=1; " + "b=" + "x" * 4000)
    assert ordinary.status == 502
