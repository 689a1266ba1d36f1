"""App configuration for ``gallery``."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from gallery.project.startup import prepare_process


class GalleryConfig(AppConfig):
    """The Glasshouse gallery app."""

    name = "gallery"
    verbose_name = "Glasshouse"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Prepare the process (data folders, the generated secret key, Sentry:
        ``gallery.project.startup``), connect the storage cache to ``setting_changed`` so tests
        can point storage elsewhere, and claiming on login: galleries a session uploaded
        anonymously move into the account that logs in (or signs up) in it."""
        prepare_process()
        from django.contrib.auth.signals import user_logged_in

        from gallery import storage  # noqa: F401
        from gallery.views.mine import claim_session_galleries

        user_logged_in.connect(claim_session_galleries, dispatch_uid="gallery.claim_session_galleries")
        post_migrate.connect(ensure_moderators_group, sender=self, dispatch_uid="gallery.ensure_moderators_group")


#: What the "Moderators" group may do: see galleries, builds, reports, publishers and the audit
#: log, and act through the moderation actions (``gallery.moderate_gallery``). No
#: ``change_gallery``, so plugins and metadata are out of reach; no ``delete_gallery``.
MODERATOR_PERMISSIONS = (
    "view_gallery",
    "moderate_gallery",
    "view_build",
    "view_report",
    "view_auditevent",
    "view_publisher",
)


def ensure_moderators_group(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """Create the "Moderators" group with ``MODERATOR_PERMISSIONS`` if it is missing (``post_migrate``).

    After every ``migrate`` and every ``flush`` (which the test suite runs between
    transactional tests), like Django's own permissions. Leaves an existing group's
    permissions alone, so an operator's changes stand.
    """
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from gallery.models import MODERATORS_GROUP

    create_permissions(sender, verbosity=0, using=using)  # the permissions must exist first
    group, created = Group.objects.using(using).get_or_create(name=MODERATORS_GROUP)
    if created:
        group.permissions.set(
            Permission.objects.using(using).filter(
                content_type__app_label="gallery", codename__in=MODERATOR_PERMISSIONS
            )
        )
