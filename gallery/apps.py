"""App configuration for ``gallery``."""

from __future__ import annotations

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    """The Glasshouse gallery app."""

    name = "gallery"
    verbose_name = "Glasshouse"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the storage cache to ``setting_changed`` so tests can point storage elsewhere."""
        from gallery import storage  # noqa: F401
