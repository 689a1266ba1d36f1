"""The production shape on loopback, started from deploy/: nginx decides nothing, Django streams nothing.

Real processes, each on a free loopback port: Debian's nginx with deploy/nginx/ (upstreams, app
origin, content origins; plain HTTP listeners instead of 443, ``*.localhost`` instead of the
content domain, this test's ports, bucket and data folder), gunicorn with 2 workers from
deploy/gunicorn.conf.py (``CONTENT_ACCEL_REDIRECT=/_s3/``), two Celery worker nodes (prefork,
as in production) on Redis, the test's PostgreSQL database, and a moto S3 server of this test
whose bucket lets anonymous readers (nginx) get builds/, runtime/ and wheels/ only (content.conf,
"Private buckets", option a).

``test_a_published_gallery_is_served_by_nginx_from_s3``: one upload through nginx's app origin,
its build, approval, then every kind of store file fetched through nginx: the bytes are S3's
(moto logs nginx's GET), Django's own answer for the path is an X-Accel-Redirect without a
body, and the headers are Django's (map content type even when the object says otherwise, CSP,
nosniff, immutable caching of content-addressed paths, no cookies, no x-amz-*); Range, HEAD,
the gzip and Brotli copies and a missing key; the self-host zip (the stored object, as an attachment) and its rate
limit per the address nginx saw; then Chromium browses the gallery through nginx.
``test_a_burst_of_builds_finishes_when_one_of_two_workers_stops``: six uploads, one worker node
stopped (SIGTERM, Celery's warm shutdown) while it builds; every build ends ready.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brotli
import pytest
import requests

from builder.storage import content_type_for
from gallery.content.paths import IMMUTABLE
from gallery.content.preview import preview_url
from gallery.models import Build, BuildState, Gallery
from gallery.services import moderation
from tests.support.loopback import free_port
from tests.support.nginx import Nginx, find_nginx, render_deploy_config, running_nginx
from tests.support.process_wait import wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
CSRF = "p" * 32
#: The prefixes nginx may read from the bucket without credentials (deploy/nginx/content.conf).
PUBLIC_PREFIXES = ("builds/", "runtime/", "wheels/")
#: gunicorn's DOWNLOAD_RATE_LIMIT here: self-host zips per client address and hour.
DOWNLOADS_ALLOWED = 3


@dataclass
class Stack:
    """The running production shape: ``app_url`` is nginx's app origin; gunicorn's own port is ``web_port``."""

    app_url: str
    content_port: int
    web_port: int
    nginx: Nginx
    bucket: Any
    moto_log: Path
    web_log: Path
    workers: list[Any]

    def gallery_host(self, label: str) -> str:
        return f"{label}.localhost:{self.content_port}"

    def gallery_get(self, label: str, path: str, method: str = "GET", **headers: str) -> requests.Response:
        """``path`` of content origin ``label`` through nginx (Python does not resolve ``*.localhost``)."""
        return requests.request(
            method,
            f"http://127.0.0.1:{self.content_port}{path}",
            headers={"Host": self.gallery_host(label), "Accept-Encoding": "identity", **headers},
            timeout=60,
            stream=True,
        )

    def s3_gets(self, key: str) -> int:
        """How many GETs of ``key`` moto's server logged (nginx's, unsigned, and boto3's)."""
        return len(re.findall(rf'"GET /{re.escape(self.bucket.name)}/{re.escape(key)} HTTP', self.moto_log.read_text()))

    def publish(self, path: Path, title: str) -> str:
        """POST ``path`` to /publish/ through nginx as the page's script does; return the build id."""
        with path.open("rb") as fh:
            answer = requests.post(
                f"{self.app_url}/publish/",
                data={
                    "csrfmiddlewaretoken": CSRF,
                    "title": title,
                    "visibility": "listed",
                    "datasette_version": "0.65.5",
                },
                files={"file": (path.name, fh)},
                cookies={"csrftoken": CSRF},
                headers={"Accept": "application/json"},
                timeout=60,
            )
        assert answer.status_code == 200, answer.text[:2000]
        return re.fullmatch(r"/builds/([a-z0-9]{16})/", answer.json()["redirect"]).group(1)


def _allow_nginx_to_read_the_bundles(bucket: Any) -> None:
    bucket.client().put_bucket_policy(
        Bucket=bucket.name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "nginx-reads-bundles",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": [f"arn:aws:s3:::{bucket.name}/{prefix}*" for prefix in PUBLIC_PREFIXES],
                    }
                ],
            }
        ),
    )


@pytest.fixture
def stack(
    private_s3, celery_worker_factory, glasshouse_data_dir: Path, settings: Any, tmp_path: Path
) -> Iterator[Stack]:
    server, bucket = private_s3
    _allow_nginx_to_read_the_bundles(bucket)
    app_port, content_port, web_port = free_port(), free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    # What the test process, the workers and gunicorn agree on: galleries at <id>.localhost:<nginx port>.
    settings.CONTENT_DOMAIN = "localhost"
    settings.CONTENT_SCHEME = "http"
    settings.CONTENT_PORT = str(content_port)
    settings.APP_URL = app_url
    settings.GALLERY_AUTO_APPROVE = False
    workers = [celery_worker_factory(pool="prefork"), celery_worker_factory(pool="prefork")]

    web_log = tmp_path / "gunicorn.log"
    env = {
        **workers[0].env,
        "PORT": str(web_port),
        "WEB_CONCURRENCY": "2",
        "APP_URL": app_url,
        # The test process signs preview links; gunicorn checks them.
        "SECRET_KEY": settings.SECRET_KEY,
        "CONTENT_ACCEL_REDIRECT": "/_s3/",
        "RATELIMIT_IP_META_KEY": "HTTP_X_REAL_IP",
        "UPLOAD_RATE_LIMIT": "1000/m",
        # The burst's uploads all come from this machine's address, which quotas count as one publisher.
        "PUBLISHER_MAX_CONCURRENT_BUILDS": "10",
        "DOWNLOAD_RATE_LIMIT": f"{DOWNLOADS_ALLOWED}/h",
    }
    with web_log.open("wb") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "gallery.project.wsgi:application"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        nginx = render_deploy_config(
            find_nginx(),
            tmp_path / "nginx",
            [
                ("server 127.0.0.1:8000;", f"server 127.0.0.1:{web_port};"),
                ("server 127.0.0.1:9000;", f"server 127.0.0.1:{server.port};"),
                ("proxy_set_header Host 127.0.0.1:9000;", f"proxy_set_header Host 127.0.0.1:{server.port};"),
                ("glasshouse-bundles", bucket.name),
                ("listen 443 ssl http2;\n    server_name glasshouse.example.org;",
                 f"listen 127.0.0.1:{app_port};\n    server_name glasshouse.example.org;"),
                ("listen 443 ssl http2;\n    # Only well-formed", f"listen 127.0.0.1:{content_port};\n    # Only well-formed"),
                ("listen 443 ssl default_server;", f"listen 127.0.0.1:{content_port} default_server;"),
                ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
                (r"\.example-content\.org$", r"\.localhost$"),
                ("server_name example-content.org;", "server_name localhost;"),
            ],
            data_dir=glasshouse_data_dir,
        )  # fmt: skip
        with running_nginx(nginx):
            wait_http(f"http://127.0.0.1:{web_port}/healthz", web, 60, "gunicorn", web_log)
            yield Stack(app_url, content_port, web_port, nginx, bucket, server.log_path, web_log, workers)
    finally:
        web.terminate()
        web.wait(30)


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers={"Accept-Encoding": "identity", **headers}, timeout=60)


def _content(response: requests.Response) -> bytes:
    """The body as sent (still compressed if it was)."""
    return response.raw.read()


def _s3_bytes(bucket: Any, key: str) -> bytes:
    return bucket.client().get_object(Bucket=bucket.name, Key=key)["Body"].read()


def _wait_ready(build_id: str, timeout: float = 240) -> Build:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        build = Build.objects.get(pk=build_id)
        if build.is_final:
            assert build.state == BuildState.READY, build.log
            return build
        time.sleep(0.5)
    raise AssertionError(f"build {build_id} still {build.state} after {timeout:.0f} s:\n{build.log}")


@pytest.mark.e2e
def test_a_published_gallery_is_served_by_nginx_from_s3(stack: Stack, make_sqlite, page: Any) -> None:
    build = _wait_ready(stack.publish(make_sqlite("albums.db"), "Through nginx and S3"))
    gallery = Gallery.objects.get(pk=build.gallery_id)
    assert stack.gallery_get(gallery.id, "/").status_code == 404, "nothing is public before approval"
    manifest = json.loads(_s3_bytes(stack.bucket, f"builds/{build.id}/manifest.json"))
    files = {entry["url"]: entry["key"] for entry in manifest["files"]}
    database = manifest["database"]["key"]
    # The build's own policy (gallery.content.files.build_policy), framed by nobody on a preview.
    policy = manifest["content_security_policy"]

    # A preview (the moderators' view of a pending gallery): nginx keeps its stricter headers.
    preview = urlsplit(preview_url(build)).hostname.removesuffix(".localhost")
    for url, cache_control in [("/sw.js", "private, no-store"), (f"/_build/{build.id}/data/albums.db", None)]:
        answer = stack.gallery_get(preview, url)
        assert answer.status_code == 200 and _content(answer) == _s3_bytes(stack.bucket, files[url]), url
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Robots-Tag"] == "noindex"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Content-Security-Policy"] == re.sub(
            r"frame-ancestors [^;]*", "frame-ancestors 'none'", policy
        )
        assert answer.headers["Cache-Control"] == (cache_control or "private, max-age=31536000, immutable")
    moderation.approve(gallery, build=build.pk)
    runtime_wasm = next(url for url in files if url.startswith("/_runtime/") and url.endswith(".wasm"))
    wheel = next(url for url in files if url.startswith("/_wheels/"))
    static = next(url for url in files if url.startswith("/-/static/"))
    database_url = next(url for url, key in files.items() if key == database)
    immutable = [runtime_wasm, wheel, database_url]

    for url in [*immutable, static, "/sw.js"]:
        key = files[url]
        # Django's own answer (gunicorn, no nginx): a redirect to the internal location, no body.
        direct = _get(f"http://127.0.0.1:{stack.web_port}{url}", Host=stack.gallery_host(gallery.id))
        assert direct.status_code == 200 and direct.headers["X-Accel-Redirect"] == f"/_s3/{key}", url
        assert direct.content == b""

        stored = _s3_bytes(stack.bucket, key)
        s3_gets = stack.s3_gets(key)
        served = stack.gallery_get(gallery.id, url, Cookie="sessionid=x; gallery=y")
        assert served.status_code == 200, (url, served.text[:500], stack.nginx.error_log)
        assert _content(served) == stored, url
        assert stack.s3_gets(key) == s3_gets + 1, f"nginx did not fetch {key} from S3"
        assert served.headers["Content-Type"] == content_type_for(key)
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert served.headers["Content-Security-Policy"] == policy
        assert served.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert served.headers["Cache-Control"] == (IMMUTABLE if url in immutable else "no-cache"), url
        assert "Set-Cookie" not in served.headers
        assert not [name for name in served.headers if name.lower().startswith("x-amz")], served.headers
        assert "Access-Control-Allow-Origin" not in served.headers
        assert "X-Accel-Redirect" not in served.headers
    sw = stack.gallery_get(gallery.id, "/sw.js")
    assert sw.headers["Service-Worker-Allowed"] == "/"
    assert sw.headers["Clear-Site-Data"] == '"cookies"'

    # The self-host zip the build stored: Django decides and counts, nginx sends the object.
    zip_key, zip_url = f"builds/{build.id}/download.zip", f"/_download/{build.id}.zip"
    direct = _get(f"http://127.0.0.1:{stack.web_port}{zip_url}", Host=stack.gallery_host(gallery.id))
    assert direct.status_code == 200 and direct.headers["X-Accel-Redirect"] == f"/_s3/{zip_key}"
    assert direct.content == b""
    s3_gets = stack.s3_gets(zip_key)
    served = stack.gallery_get(gallery.id, zip_url, Cookie="sessionid=x; gallery=y")
    assert served.status_code == 200, (served.text[:500], stack.nginx.error_log)
    body = _content(served)
    assert stack.s3_gets(zip_key) == s3_gets + 1, "nginx did not fetch the zip from S3"
    assert body == _s3_bytes(stack.bucket, zip_key)
    assert len(body) == Build.objects.get(pk=build.id).download_bytes
    assert served.headers["Content-Type"] == "application/zip"
    assert served.headers["Content-Disposition"] == f'attachment; filename="albums-{build.id}.zip"'
    assert served.headers["Cache-Control"] == "no-store"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == policy
    assert "Set-Cookie" not in served.headers
    assert not [name for name in served.headers if name.lower().startswith("x-amz")], served.headers
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.read(database_url.removeprefix("/")) == _s3_bytes(stack.bucket, database)
        assert "python3 -m http.server" in archive.read("README.txt").decode()
    # DOWNLOADS_ALLOWED per address: the one nginx saw (127.0.0.1, as for the direct GET above),
    # whatever the client claims in X-Real-IP.
    for claim in range(DOWNLOADS_ALLOWED - 2):
        assert stack.gallery_get(gallery.id, zip_url, **{"X-Real-IP": f"203.0.113.{claim}"}).status_code == 200
    refused = stack.gallery_get(gallery.id, zip_url, **{"X-Real-IP": "203.0.113.200"})
    assert refused.status_code == 429 and "Too many downloads from your address" in refused.text
    assert int(refused.headers["Retry-After"]) > 0 and "Set-Cookie" not in refused.headers

    # The type and caching are Django's even when the object in the bucket says otherwise.
    client = stack.bucket.client()
    client.copy_object(
        Bucket=stack.bucket.name, Key=database, CopySource={"Bucket": stack.bucket.name, "Key": database},
        MetadataDirective="REPLACE", ContentType="text/html", CacheControl="no-store",
    )  # fmt: skip
    tampered = stack.gallery_get(gallery.id, database_url)
    assert tampered.headers["Content-Type"] == "application/vnd.sqlite3"
    assert tampered.headers["Cache-Control"] == IMMUTABLE

    # Range (from S3), HEAD (Django, from the object's size), the stored gzip copies, a missing key.
    whole = _s3_bytes(stack.bucket, database)
    part = stack.gallery_get(gallery.id, database_url, Range="bytes=0-15")
    assert part.status_code == 206 and _content(part) == whole[:16] == b"SQLite format 3\x00"
    assert part.headers["Content-Range"] == f"bytes 0-15/{len(whole)}"
    # Django's, kept by the redirect; S3's is hidden (content.conf).
    assert part.raw.headers.getlist("Accept-Ranges") == ["bytes"]
    # A browser's lazy read of the database: the identity bytes, though a Brotli copy is stored.
    tail = stack.gallery_get(gallery.id, database_url, Range="bytes=-100", **{"Accept-Encoding": "gzip, deflate, br"})
    assert tail.status_code == 206 and _content(tail) == whole[-100:] and "Content-Encoding" not in tail.headers
    assert tail.headers["Content-Range"] == f"bytes {len(whole) - 100}-{len(whole) - 1}/{len(whole)}"
    assert stack.gallery_get(gallery.id, database_url, Range=f"bytes={len(whole)}-").status_code == 416
    head = stack.gallery_get(gallery.id, database_url, "HEAD")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(whole)) and not _content(head)
    copies = {entry["url"]: entry["gzip"]["key"] for entry in manifest["files"] if "gzip" in entry}
    brotli_copies = {entry["url"]: entry["brotli"]["key"] for entry in manifest["files"] if "brotli" in entry}
    js = next(url for url in copies if url.endswith(".js") and len(_s3_bytes(stack.bucket, files[url])) > 2048)
    # A browser over plain HTTP (gzip), one over HTTPS (br too: the build's Brotli copies).
    for accept, stored, encoding, decode in (("gzip, deflate", copies, "gzip", gzip.decompress),
                                             ("gzip, deflate, br, zstd", brotli_copies, "br", brotli.decompress)):  # fmt: skip
        for url in (js, runtime_wasm, database_url):
            s3_gets = stack.s3_gets(stored[url])
            zipped = stack.gallery_get(gallery.id, url, **{"Accept-Encoding": accept})
            assert zipped.status_code == 200, (url, stack.nginx.error_log)
            # The stored copy as it is (nginx did not gzip it again), decoding to the identity bytes.
            assert stack.s3_gets(stored[url]) == s3_gets + 1, f"nginx did not fetch {stored[url]} from S3"
            assert zipped.raw.headers.getlist("Content-Encoding") == [encoding], url
            body = _content(zipped)
            assert body == _s3_bytes(stack.bucket, stored[url])
            assert decode(body) == _s3_bytes(stack.bucket, files[url])
            assert zipped.headers["Content-Type"] == content_type_for(files[url])
            assert "Accept-Encoding" in zipped.headers["Vary"]
            assert zipped.headers["Content-Security-Policy"] == policy
            assert zipped.headers["X-Content-Type-Options"] == "nosniff"
    assert "Accept-Encoding" in stack.gallery_get(gallery.id, database_url).headers["Vary"]
    etag = stack.gallery_get(gallery.id, database_url).headers["ETag"]
    assert stack.gallery_get(gallery.id, database_url, **{"If-None-Match": etag}).status_code == 304
    # A key with characters that need encoding reaches S3 as that key (Django encodes, nginx re-encodes).
    client.put_object(Bucket=stack.bucket.name, Key=f"builds/{build.id}/a b+c%.js", Body=b"odd = 1;\n")
    odd = stack.gallery_get(gallery.id, f"/_build/{build.id}/a%20b%2Bc%25.js")
    assert odd.status_code == 200 and _content(odd) == b"odd = 1;\n"
    missing = stack.gallery_get(gallery.id, f"/_build/{build.id}/no-such-file.js")
    assert missing.status_code == 404 and missing.headers["X-Content-Type-Options"] == "nosniff"

    # The uploaded database stays private: not even nginx's anonymous reads reach it.
    uploads = [obj["Key"] for obj in client.list_objects_v2(Bucket=stack.bucket.name).get("Contents", [])
               if not obj["Key"].startswith(PUBLIC_PREFIXES)]  # fmt: skip
    assert uploads, "the test expects the upload in the bucket"
    endpoint = stack.bucket.endpoint_url
    assert requests.get(f"{endpoint}/{stack.bucket.name}/{uploads[0]}", timeout=30).status_code == 403

    # The app origin's static files come from STATIC_ROOT through nginx, not gunicorn.
    (Path(os.environ["GLASSHOUSE_DATA_DIR"]) / "static" / "probe.txt").write_text("from STATIC_ROOT\n")
    assert _get(f"{stack.app_url}/static/probe.txt").text == "from STATIC_ROOT\n"
    assert "/static/probe.txt" not in stack.web_log.read_text()

    # A reader's Chromium, through nginx: the table page renders (Pyodide from the store).
    access_log = stack.nginx.prefix / "access.log"
    database_gets = access_log.read_text().count(f'"GET {database_url} HTTP/1.1" 200 ')
    page.goto(gallery.url + "albums/album")
    page.wait_for_selector("table.rows-and-columns", timeout=120_000)
    assert "Kind of Blue" in page.inner_text("table.rows-and-columns")
    # The Service Worker fetched the database through nginx (so from S3).
    assert access_log.read_text().count(f'"GET {database_url} HTTP/1.1" 200 ') == database_gets + 1


def test_a_burst_of_builds_finishes_when_one_of_two_workers_stops(stack: Stack, make_sqlite) -> None:
    burst = 4  # more than the two workers run at once, so some wait in the queue
    build_ids = [stack.publish(make_sqlite(f"burst{n}.db"), f"Burst {n}") for n in range(burst)]
    first, second = stack.workers
    # Stop the first node while it builds: warm shutdown finishes that build and hands back
    # what it had prefetched; the second node builds the rest.
    deadline = time.monotonic() + 60
    while not (_busy(first) and Build.objects.filter(pk__in=build_ids, state=BuildState.BUNDLING).exists()):
        assert time.monotonic() < deadline, f"the first worker started no build:\n{first.log}"
        time.sleep(0.05)
    first.stop(timeout=240)
    assert first.process.returncode == 0, first.log
    assert "Warm shutdown" in first.log, first.log
    assert not _busy(first), "the build it was running was finished before it exited"
    for build_id in build_ids:
        assert _wait_ready(build_id, timeout=300).state == BuildState.READY
    assert second.process.poll() is None
    assert len(re.findall(r"build_gallery\[.*\] succeeded", second.log)) >= burst - len(
        re.findall(r"build_gallery\[.*\] succeeded", first.log)
    ), second.log


def _busy(worker: Any) -> bool:
    """Whether ``worker`` logged more builds received than finished."""
    log = worker.log
    return len(re.findall(r"build_gallery\[.*\] received", log)) > len(
        re.findall(r"build_gallery\[.*\] succeeded", log)
    )
