"""The self-host download, ``/_download/<build-id>.zip``: the stored zip, rate-limited per address."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_ratelimit.core import get_usage

from builder.download import download_key
from gallery.content.files import build_serving, serve_key
from gallery.content.pages import not_found, notice_page
from gallery.content.resolve import ServedBuild
from gallery.models import (
    BUILD_ID_RE,
    approved_build,
)
from gallery.ratelimits import DOWNLOAD_RATE_GROUP, too_many_downloads_message
from gallery.services import queue

logger = logging.getLogger(__name__)


def serve_download(request: HttpRequest, served: ServedBuild, name: str) -> HttpResponseBase:
    """Serve ``/_download/<build-id>.zip``: the zip the build stored (``builder.download.download_key``).

    A pinned origin offers its own build, a gallery's origin any build ``approved_build``
    returns; anything else is 404. Each GET counts against ``DOWNLOAD_RATE_LIMIT`` for the
    client's address (``gallery.ratelimits``); over it, 429 with a page that says when to try
    again. The zip goes out as every stored file does (``serve_key``: X-Accel-Redirect behind
    nginx), ``no-store``, as an attachment named ``<database-name>-<build-id>.zip``. A build
    made before builds stored their zip (``Build.download_bytes`` unset) gets it made once
    (``_prepare_download``): the server never makes a zip while a reader waits.
    """
    build_id = name.removesuffix(".zip")
    if (
        not name.endswith(".zip")
        or not BUILD_ID_RE.fullmatch(build_id)
        or (served.pinned and build_id != served.build_id)
    ):
        return not_found()
    build = approved_build(served.gallery_id, build_id)
    if build is None:
        return not_found()
    if build.download_bytes is None:
        return _prepare_download(build_id)
    usage = get_usage(
        request, group=DOWNLOAD_RATE_GROUP, key="ip", rate=settings.DOWNLOAD_RATE_LIMIT, method="GET", increment=True
    )
    if usage is not None and usage["should_limit"]:
        response = notice_page(429, "Too many downloads", too_many_downloads_message(usage["time_left"]))
        if usage["time_left"] >= 0:
            response["Retry-After"] = str(usage["time_left"])
        return response
    disposition = f'attachment; filename="{build_serving(build_id).download_filename}"'
    return serve_key(
        request, download_key(build_id), "no-store", {"Content-Disposition": disposition}, build_id=build_id
    )


def _prepare_download(build_id: str) -> HttpResponseBase:
    """Answer 503 for a build whose zip is not stored yet, having asked a worker to make it.

    The first request sends ``worker_shell.tasks.store_download`` (``gallery.services.queue.send_download``);
    later ones, until the task's hard time limit has passed, send nothing more (a cache entry
    per build, shared by the web processes through Redis). The page says to try again shortly,
    and ``Retry-After`` says when.
    """
    asked = f"glasshouse:download-asked:{build_id}"
    if cache.add(asked, 1, timeout=settings.BUILD_HARD_TIME_LIMIT):
        try:
            queue.send_download(build_id)
        except queue.BROKER_ERRORS as exc:
            cache.delete(asked)
            logger.error("could not ask a worker for the zip of build %s: %s", build_id, exc)
            return notice_page(
                503, "Download unavailable", "This version's download cannot be prepared right now. Try again later."
            )
    response = notice_page(
        503,
        "Download being prepared",
        "This version was published before downloads were stored, so its zip is being made now, once. "
        "Try again in a minute or two.",
    )
    response["Retry-After"] = "60"
    return response
