"""``python manage.py remove_files``: finish removals that a storage outage interrupted.

Rejection, takedown and deletion remove a gallery's bundles and uploads from storage right
after the decision; if storage failed then, the files stay (not served: the gallery is not
public) and the error was logged. This command finds them (``removal.files_left_behind``)
and removes them. Safe to run at any time, e.g. from cron; exits non-zero if some remain.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gallery.services import removal


class Command(BaseCommand):
    help = "Remove the files of rejected, taken-down and deleted galleries that a storage outage left behind."

    def handle(self, *args: Any, **options: Any) -> None:
        left = removal.files_left_behind()
        done = removal.remove_build_files(left)
        self.stdout.write(f"Removed the files of {len(done)} of {len(left)} builds.")
        if len(done) < len(left):
            raise CommandError(f"{len(left) - len(done)} builds still have files: storage failed again (see the log).")
