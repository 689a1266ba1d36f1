"""``python manage.py collect_garbage [--dry-run]``: remove what no gallery needs from storage.

Superseded builds beyond ``BUILDS_KEPT_PER_GALLERY`` per gallery, uploads orphaned by a request
that died before committing, and runtime files and wheels no stored build refers to
(``gallery.services.garbage``). The worker's beat runs the same every day; this is for operators.
Exits non-zero if storage refused some removals (the next run tries again).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.services.garbage import collect_garbage


class Command(BaseCommand):
    help = "Remove superseded builds' files, orphaned uploads and unreferenced runtime files and wheels from storage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List what would be removed; remove nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        collected = collect_garbage(dry_run=options["dry_run"])
        prefix = "would remove" if collected.dry_run else "removed"
        for build_id in collected.builds:
            self.stdout.write(f"{prefix} build {build_id}'s files")
        for folder in collected.uploads + collected.shared:
            self.stdout.write(f"{prefix} {folder}")
        self.stdout.write(collected.summary())
        if collected.failed:
            raise CommandError(f"Storage refused {len(collected.failed)} removals; run the command again later.")
