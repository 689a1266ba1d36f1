"""``python manage.py moderator EMAIL [--remove]``: make an account a moderator, or stop it being one.

A moderator is a staff user in the "Moderators" group (``gallery.apps.ensure_moderators_group``): they sign in at
``/admin/``, work the moderation queue and read the audit log, and cannot edit galleries'
fields, delete galleries or change the audit log. The account must exist (sign up first).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from gallery.models import MODERATORS_GROUP


class Command(BaseCommand):
    help = "Make the account with this email (or username) a moderator; --remove undoes it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("account", help="email address or username of an existing account")
        parser.add_argument("--remove", action="store_true", help="take the account out of the Moderators group")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        account = options["account"]
        user = users.filter(email__iexact=account).first() or users.filter(username=account).first()
        if user is None:
            raise CommandError(f"No account {account!r}: the person signs up first, then run this again.")
        group = Group.objects.get(name=MODERATORS_GROUP)
        if options["remove"]:
            user.groups.remove(group)
            if not user.is_superuser and not user.groups.exists():
                user.is_staff = False
                user.save(update_fields=["is_staff"])
            self.stdout.write(f"{account} is no longer a moderator.")
            return
        user.groups.add(group)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        self.stdout.write(f"{account} is a moderator: they sign in at /admin/ and see the moderation queue.")
