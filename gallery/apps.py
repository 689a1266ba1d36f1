"""App configuration for ``gallery``."""

from __future__ import annotations

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    """The Glasshouse gallery app."""

    name = "gallery"
    verbose_name = "Glasshouse"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the storage cache to ``setting_changed`` so tests can point storage elsewhere,
        and claiming on login: galleries whose management link a session opened move into the
        account that logs in (or signs up) in it."""
        from django.contrib.auth.signals import user_logged_in

        from gallery import storage  # noqa: F401
        from gallery.publisher import claim_session_galleries

        user_logged_in.connect(claim_session_galleries, dispatch_uid="gallery.claim_session_galleries")
