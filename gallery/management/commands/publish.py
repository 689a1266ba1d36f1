"""``python manage.py publish PATH``: publish a SQLite database, or a CSV, TSV, JSON or Excel file, from the command line.

The command acts as an operator: the gallery is approved at once (``--pending`` leaves it
for a moderator); the audit log records the upload as the operator's.

Same rules as the upload form (``gallery.services.accept_upload``). Prints the
build page and the gallery URL; with ``--wait``, follows the build's log until
it finishes and exits non-zero (``CommandError``) unless it is ready.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from builder.catalog import DATASETTE_VERSIONS, DEFAULT_DATASETTE_VERSION
from gallery.models import Build, BuildState, Gallery
from gallery.services import galleries, uploads

#: Seconds between two looks at the build row with --wait.
POLL_INTERVAL = 0.5


class Command(BaseCommand):
    help = (
        "Publish a SQLite database (or a CSV, TSV, JSON or Excel file) as a gallery: store it, queue its build, "
        "and optionally wait for it."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "path", type=Path, help=f"the file: {uploads.ACCEPTED_FILES}"
        )
        parser.add_argument("--title", help="gallery title (default: the file name)")
        parser.add_argument("--description", default="", help="gallery description")
        parser.add_argument(
            "--plugin",
            dest="plugins",
            action="append",
            default=[],
            metavar="NAME",
            help="catalog plugin to install; repeat for several",
        )
        parser.add_argument(
            "--unlisted", action="store_true", help="keep it off the front page"
        )
        parser.add_argument(
            "--datasette-version",
            default=DEFAULT_DATASETTE_VERSION,
            choices=DATASETTE_VERSIONS,
            help=f"Datasette version (default {DEFAULT_DATASETTE_VERSION})",
        )
        parser.add_argument(
            "--metadata",
            type=Path,
            metavar="FILE",
            help="Datasette metadata and plugin settings, YAML or JSON",
        )
        parser.add_argument(
            "--full-text-search",
            action="store_true",
            help="for a CSV, TSV, JSON or Excel file: make text columns searchable (all, or those of --search-column)",
        )
        parser.add_argument(
            "--search-column",
            dest="search_columns",
            action="append",
            default=[],
            metavar="NAME",
            help="with --full-text-search, a column to search; repeat for several (default: every text column)",
        )
        moderation = parser.add_mutually_exclusive_group()
        moderation.add_argument(
            "--pending",
            action="store_true",
            help="leave the gallery pending for a moderator (by default the operator's upload is approved)",
        )
        moderation.add_argument(
            "--approve",
            action="store_true",
            help="approve the gallery at once: the default, kept for scripts",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="follow the build until it is ready or fails",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="with --wait, give up after this long (default: the build's hard time limit plus 5 minutes)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            metadata_text = options["metadata"].read_text() if options["metadata"] else ""
        except OSError as exc:
            raise CommandError(f"Could not read {options['metadata']}: {exc.strerror or exc}") from exc
        try:
            with path.open("rb") as fh:
                build = galleries.accept_upload(
                    upload=File(fh, name=path.name),
                    filename=path.name,
                    title=options["title"] or path.stem,
                    description=options["description"],
                    plugins=options["plugins"],
                    visibility=Gallery.Visibility.UNLISTED
                    if options["unlisted"]
                    else Gallery.Visibility.LISTED,
                    datasette_version=options["datasette_version"],
                    metadata_text=metadata_text,
                    full_text_search=options["full_text_search"],
                    search_columns=options["search_columns"],
                    by_operator=not options["pending"],
                )
        except (uploads.UploadRejected, uploads.StorageUnavailable) as exc:
            raise CommandError(exc.args[0]) from exc
        except OSError as exc:
            raise CommandError(f"Could not read {path}: {exc.strerror or exc}") from exc
        gallery = build.gallery
        self.stdout.write(f"Build page:  {settings.APP_URL}{build.get_absolute_url()}")
        self.stdout.write(f"Gallery URL: {gallery.url}")
        if not options["wait"]:
            return
        timeout = (
            options["timeout"]
            if options["timeout"] is not None
            else settings.BUILD_HARD_TIME_LIMIT + 300
        )
        build = self._follow(build, timeout)
        gallery.refresh_from_db()
        if build.state != BuildState.READY:
            raise CommandError(
                f"Build {build.id} {build.state}: {build.failure_reason or 'no reason recorded'}"
            )
        if gallery.is_public:
            self.stdout.write(self.style.SUCCESS(f"Ready: {gallery.url}"))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Built; waiting for a moderator to approve it ({gallery.url})."
                )
            )

    def _follow(self, build: Build, timeout: float) -> Build:
        """Print new log lines until the build is final; raise ``CommandError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        printed = 0
        while True:
            build.refresh_from_db(fields=["state", "log", "failure_reason"])
            if len(build.log) > printed:
                self.stdout.write(build.log[printed:], ending="")
                printed = len(build.log)
            if build.is_final:
                return build
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"Timed out after {timeout:g} s; build {build.id} is still {build.state}. "
                    f"Follow it at {settings.APP_URL}{build.get_absolute_url()}"
                )
            time.sleep(POLL_INTERVAL)
