"""The publish form: one SQLite file, a title, plugins from the catalog, visibility.

Validation messages come from ``gallery.services`` and ``builder`` so the form,
the JSON answer and the ``publish`` command say the same thing.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from builder.catalog import (
    DATASETTE_VERSIONS,
    DEFAULT_DATASETTE_VERSION,
    UnknownPlugin,
    check_plugins,
    load_catalog,
    load_lock,
)
from builder.metadata import InvalidMetadata, parse_metadata
from gallery.embed import InvalidGalleryURL, parse_gallery_url
from gallery.models import (
    DESCRIPTION_MAX_LENGTH,
    METADATA_TEXT_MAX_LENGTH,
    REPORT_DETAILS_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Gallery,
    Report,
    database_name_for,
)
from gallery.models.limits import TOO_LONG
from gallery.services import uploads
from gallery.services.uploads import MAX_COLUMN_NAME_CHARS, MAX_SEARCH_COLUMNS


def too_long(what: str) -> dict[str, str]:
    """``error_messages`` for a length-limited field: how long it is, the limit, what to do (``TOO_LONG``)."""
    return {"max_length": TOO_LONG.format(what=what, length="%(show_value)d", limit="%(limit_value)d")}


class CatalogPluginsField(forms.MultipleChoiceField):
    """Checkboxes for catalog plugins; unknown names are reported by ``check_plugins``, not Django."""

    def valid_value(self, value: str) -> bool:
        # Defer to clean_plugins so the publisher reads the catalog's own message.
        return True


class GallerySettingsForm(forms.Form):
    """A gallery's settings: ``title``, ``description``, ``plugins`` (list of catalog
    names), ``visibility`` (``Gallery.Visibility``), ``datasette_version``, ``metadata``
    (YAML or JSON text).

    ``cleaned_data["plugins"]`` is sorted and de-duplicated. Shared by the publish form
    and the publisher's edit form (``gallery.views.mine``).
    """

    title = forms.CharField(
        max_length=TITLE_MAX_LENGTH,
        error_messages={"required": "Give the gallery a title.", **too_long("title")},
    )
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        error_messages=too_long("description"),
        widget=forms.Textarea(attrs={"rows": 3}),
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

    metadata = forms.CharField(
        label="Datasette metadata and plugin settings",
        required=False,
        max_length=METADATA_TEXT_MAX_LENGTH,
        error_messages=too_long("metadata"),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
        help_text=(
            "Optional, YAML or JSON: title, description, license, source, canned queries "
            "(under databases: <name>: queries:) and per-plugin settings (under plugins:). "
            "The database is named after the file, e.g. chinook for chinook.sqlite."
        ),
    )

    full_text_search = forms.BooleanField(
        label="Make text columns searchable (full-text search)",
        required=False,
        help_text="For a CSV, TSV, JSON or Excel file: Datasette then shows a search box on each table.",
    )
    search_columns = forms.CharField(
        label="Only these columns",
        required=False,
        max_length=MAX_SEARCH_COLUMNS * (MAX_COLUMN_NAME_CHARS + 2),
        error_messages=too_long("list of columns"),
        help_text="Optional, comma-separated column names; empty: every text column.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plugins = self.fields["plugins"]
        assert isinstance(plugins, forms.MultipleChoiceField)
        plugins.choices = [(p.name, p.name) for p in load_catalog().values()]

    def clean_plugins(self) -> list[str]:
        """Return the chosen plugins sorted; an unknown name fails with the catalog's message."""
        try:
            return check_plugins(
                self.cleaned_data["plugins"], self.data.get("datasette_version") or DEFAULT_DATASETTE_VERSION
            )
        except (UnknownPlugin, ValueError) as exc:
            raise forms.ValidationError(exc.args[0], code="unknown_plugin") from exc

    def clean_search_columns(self) -> list[str]:
        """The comma-separated column names as a list (``uploads.clean_search_columns``)."""
        try:
            return uploads.clean_search_columns(self.cleaned_data["search_columns"].split(","))
        except uploads.UploadRejected as exc:
            raise forms.ValidationError(exc.args[0], code="invalid_columns") from exc

    def settings_arguments(self) -> dict[str, Any]:
        """The cleaned settings as ``galleries.accept_upload``/``update_gallery`` keyword arguments.

        Keys: ``title``, ``description``, ``visibility``, ``plugins``, ``metadata_text``,
        ``datasette_version``, ``full_text_search``, ``search_columns``.
        """
        data = self.cleaned_data
        return {
            "title": data["title"],
            "description": data["description"],
            "visibility": data["visibility"],
            "plugins": data["plugins"],
            "metadata_text": data["metadata"],
            "datasette_version": data["datasette_version"],
            "full_text_search": data["full_text_search"],
            "search_columns": data["search_columns"],
        }

    def database_name(self) -> str | None:
        """The name the metadata must use for the database, or ``None`` while it is unknown."""
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        """Check ``metadata`` against the database name (``database_name()``) and the chosen plugins."""
        data = super().clean() or {}
        database_name = self.database_name()
        if database_name is not None and "plugins" in data and data.get("metadata"):
            try:
                parse_metadata(data["metadata"], database_name=database_name, plugins=data["plugins"])
            except InvalidMetadata as exc:
                self.add_error("metadata", forms.ValidationError(exc.args[0], code="invalid_metadata"))
        return data

    def plugin_rows(self) -> list[dict[str, Any]]:
        """Catalog entries with their checkbox state, for the template: name, description, docs, configuration, pinned version."""
        chosen = set(self["plugins"].value() or [])
        pinned = load_lock(DEFAULT_DATASETTE_VERSION)["packages"]
        return [
            {
                "name": p.name,
                "description": p.description,
                "docs": p.docs,
                "configuration": p.configuration,
                "checked": p.name in chosen,
                "version": pinned[p.name]["version"] if p.name in pinned else "",
                "verified_with": ", ".join(p.verified_with),
            }
            for p in load_catalog().values()
        ]


#: Longest report text a reader may send (characters).
REPORT_DETAILS_MAX = REPORT_DETAILS_MAX_LENGTH


def hold_reasons_help() -> str:
    """The report form's words on which reasons can hide a gallery (``Report.HOLD_REASONS``) and which cannot."""
    holding = "; ".join(f"“{Report.Reason(reason).label}”" for reason in Report.HOLD_REASONS)
    return (
        f"When several readers report a gallery for one of {holding}, it is hidden until a moderator "
        "has looked at it. Other reports go to the moderators without hiding the gallery."
    )


class ReportForm(forms.Form):
    """A reader's report of one gallery (``gallery``, passed as a keyword).

    Fields: ``reason`` (a ``Report.Reason`` value), ``details`` (up to ``REPORT_DETAILS_MAX``
    characters; required when the reason is "Something else"), ``email`` (optional) and
    ``url`` (hidden: the gallery page the reader reported from, filled by the footer's link).
    ``cleaned_data["url"]`` is that address when it is a page of ``gallery``, else ``""``:
    the reader did not type it, so a wrong one is dropped rather than shown as an error.
    """

    reason = forms.ChoiceField(
        label="What is wrong with this gallery?",
        choices=Report.Reason.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what is wrong with this gallery."},
    )
    details = forms.CharField(
        label="Details",
        required=False,
        max_length=REPORT_DETAILS_MAX,
        error_messages=too_long("report"),
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Where is the problem (a table, a row, a column) and what is it? Moderators read this.",
    )
    email = forms.EmailField(
        label="Your email (optional)",
        required=False,
        help_text="Only if you want a moderator to be able to write back; the publisher does not see it.",
        error_messages={"invalid": "Enter an email address such as you@example.com, or leave the field empty."},
    )
    url = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, gallery: Gallery, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gallery = gallery
        if settings.REPORTS_TAKEDOWN_THRESHOLD:
            self.fields["reason"].help_text = hold_reasons_help()

    def clean_url(self) -> str:
        """The reported page's address if it is one of this gallery's pages (at most 2000 characters), else ``""``."""
        return self._gallery_page(self.cleaned_data["url"])

    def reported_page(self) -> str:
        """The address ``clean_url`` keeps, for a bound form or from ``initial``, to show the reader."""
        return self._gallery_page(str((self.data if self.is_bound else self.initial).get("url", "")))

    def _gallery_page(self, url: str) -> str:
        url = url.strip()
        if not url or len(url) > (Report._meta.get_field("page_url").max_length or 0):
            return ""
        try:
            target = parse_gallery_url(url)
        except InvalidGalleryURL:
            return ""
        return url if target.gallery_id == self.gallery.pk else ""

    def clean(self) -> dict[str, Any]:
        """ "Something else" needs details: moderators cannot act on a report that says nothing."""
        data = super().clean() or {}
        if data.get("reason") == Report.Reason.OTHER and not data.get("details", "").strip():
            self.add_error("details", "Say what is wrong: you chose “Something else”, so the moderators need details.")
        return data


class DatabaseFileForm(forms.Form):
    """One field, ``file``: a SQLite database, or a CSV, TSV, JSON or Excel file the build converts,
    checked like every upload (``uploads.check_upload``).

    On its own it is the publisher's "upload a new version" form.
    """

    file = forms.FileField(
        label="Data file",
        help_text=f"Upload {uploads.ACCEPTED_FILES}. A CSV, TSV or JSON file becomes one table; each sheet of a workbook one table.",
        allow_empty_file=True,  # clean_file says it in our words
        error_messages={"required": "Choose a data file to upload: a SQLite database, CSV, TSV, JSON or Excel file."},
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(uploads.ALLOWED_EXTENSIONS)}),
    )

    def clean_file(self) -> UploadedFile:
        """Check extension, size (``UPLOAD_MAX_BYTES``) and the SQLite header."""
        upload: UploadedFile = self.cleaned_data["file"]
        try:
            uploads.check_upload(upload, upload.name or "")
        except uploads.UploadRejected as exc:
            raise forms.ValidationError(exc.args[0], code="invalid_upload") from exc
        return upload


class PublishForm(DatabaseFileForm, GallerySettingsForm):
    """The publish form: ``file`` (``DatabaseFileForm``) and the gallery's settings (``GallerySettingsForm``)."""

    field_order = ("file",)

    def database_name(self) -> str | None:
        """Named after the uploaded file; ``None`` until a file passed its checks."""
        upload = self.cleaned_data.get("file")
        return None if upload is None else database_name_for(upload.name or "")


class EditGalleryForm(GallerySettingsForm):
    """The publisher's edit form: a gallery's settings, the metadata checked against ``gallery.database_name``.

    Its initial values are the gallery's, the metadata shown as JSON (which the YAML parser reads too).
    """

    def __init__(self, *args: Any, gallery: Gallery, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "title": gallery.title,
                "description": gallery.description,
                "plugins": list(gallery.plugins),
                "visibility": gallery.visibility,
                "datasette_version": gallery.datasette_version,
                "metadata": json.dumps(gallery.metadata, indent=2, ensure_ascii=False) if gallery.metadata else "",
                "full_text_search": gallery.full_text_search,
                "search_columns": ", ".join(gallery.search_columns),
            },
        )
        super().__init__(*args, **kwargs)
        self.gallery = gallery

    def database_name(self) -> str:
        """The gallery's database name, which a new version keeps."""
        return self.gallery.database_name
