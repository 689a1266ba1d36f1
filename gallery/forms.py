"""The publish form: one SQLite file, a title, plugins from the catalog, visibility.

Validation messages come from ``gallery.services`` and ``builder`` so the form,
the JSON answer and the ``publish`` command say the same thing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from builder.catalog import (
    DATASETTE_VERSIONS,
    DEFAULT_DATASETTE_VERSION,
    UnknownPlugin,
    check_plugins,
    load_catalog,
)
from gallery import services
from gallery.models import Gallery


class CatalogPluginsField(forms.MultipleChoiceField):
    """Checkboxes for catalog plugins; unknown names are reported by ``check_plugins``, not Django."""

    def valid_value(self, value: str) -> bool:
        # Defer to clean_plugins so the publisher reads the catalog's own message.
        return True


class PublishForm(forms.Form):
    """Fields: ``file`` (SQLite), ``title``, ``description``, ``plugins`` (list of
    catalog names), ``visibility`` (``Gallery.Visibility``), ``datasette_version``.

    ``cleaned_data["plugins"]`` is sorted and de-duplicated.
    """

    file = forms.FileField(
        label="SQLite database",
        help_text="A .db, .sqlite or .sqlite3 file.",
        allow_empty_file=True,  # clean_file says it in our words
        error_messages={"required": "Choose a SQLite database file to upload."},
        widget=forms.ClearableFileInput(attrs={"accept": ".db,.sqlite,.sqlite3"}),
    )
    title = forms.CharField(
        max_length=200,
        error_messages={"required": "Give the gallery a title."},
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    plugins = CatalogPluginsField(required=False, widget=forms.CheckboxSelectMultiple)
    visibility = forms.ChoiceField(
        choices=Gallery.Visibility.choices,
        initial=Gallery.Visibility.LISTED,
        widget=forms.RadioSelect,
    )
    datasette_version = forms.ChoiceField(
        label="Datasette version",
        choices=[(v, v) for v in DATASETTE_VERSIONS],
        initial=DEFAULT_DATASETTE_VERSION,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plugins"].choices = [
            (p.name, p.name) for p in load_catalog().values()
        ]

    def clean_file(self) -> UploadedFile:
        """Check extension, size (``UPLOAD_MAX_BYTES``) and the SQLite header."""
        upload: UploadedFile = self.cleaned_data["file"]
        try:
            services.check_upload(upload, upload.name or "")
        except services.UploadRejected as exc:
            raise forms.ValidationError(exc.args[0], code="invalid_upload") from exc
        return upload

    def clean_plugins(self) -> list[str]:
        """Return the chosen plugins sorted; an unknown name fails with the catalog's message."""
        try:
            return check_plugins(self.cleaned_data["plugins"])
        except UnknownPlugin as exc:
            raise forms.ValidationError(exc.args[0], code="unknown_plugin") from exc

    def plugin_rows(self) -> list[dict[str, Any]]:
        """Catalog entries with their checkbox state, for the template: name, description, docs, configuration."""
        chosen = set(self["plugins"].value() or [])
        return [
            {
                "name": p.name,
                "description": p.description,
                "docs": p.docs,
                "configuration": p.configuration,
                "checked": p.name in chosen,
            }
            for p in load_catalog().values()
        ]
