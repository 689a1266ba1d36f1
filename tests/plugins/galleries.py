"""The chain of rows most app tests start from: a gallery, its live build, and who owns it.

``gallery`` is approved and has no owner, as an anonymous upload leaves it (its publisher holds a
management link); ``build`` is its ready, approved live build; ``owned_gallery`` is the same row
owned by ``publisher`` (``tests.plugins.users``). No bundle files are stored: the gallery app's
tests add fake ones (``tests/gallery/conftest.py``: ``make_bundle``, ``bundle``), and a test that
needs a real build uses ``published_gallery`` (``tests.plugins.builds``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gallery.models import Approval, Build, BuildReview, BuildState, Gallery, bundled_settings


@pytest.fixture
def gallery(db: None) -> Gallery:
    """An approved gallery with no owner and no build yet."""
    return Gallery.objects.create(
        title="Chinook",
        description="Music store",
        moderation_state=Gallery.ModerationState.APPROVED,
        database_name="chinook",
        plugins=["datasette-pretty-json"],
    )


@pytest.fixture
def build(gallery: Gallery) -> Build:
    """A ready build of ``gallery``, approved (as the operator's) and made its live build."""
    build = Build.objects.create(
        gallery=gallery,
        state=BuildState.READY,
        source_key="uploads/x/source.db",
        source_sha256="0" * 64,
        source_bytes=2048,
        log="Validated.\nBundled.\n",
        bundle_settings=bundled_settings(gallery),
        review=BuildReview.APPROVED,
        approval=Approval.OPERATOR,
    )
    gallery.live_build = build
    gallery.save()
    return build


@pytest.fixture
def owned_gallery(gallery: Gallery, build: Build, publisher: Any) -> Gallery:
    """``gallery`` (approved, with its live ready ``build``) owned by ``publisher``: the same object, refreshed."""
    Gallery.objects.filter(pk=gallery.pk).update(owner=publisher)
    gallery.refresh_from_db()
    return gallery


@pytest.fixture
def make_build(gallery: Gallery) -> Callable[..., Build]:
    """``make_build(state=READY, of=gallery, review=PENDING) -> Build``: another build (not live) of ``of``,
    waiting for review unless ``review`` says otherwise (an approved one as the operator's)."""

    def make(state: str = BuildState.READY, of: Gallery | None = None, review: str = BuildReview.PENDING) -> Build:
        of = of or gallery
        return Build.objects.create(
            gallery=of, state=state, source_key="uploads/y/source.db", source_sha256="1" * 64, source_bytes=1,
            bundle_settings=bundled_settings(of), review=review,
            approval=Approval.OPERATOR if review == BuildReview.APPROVED else "",
        )  # fmt: skip

    return make


@pytest.fixture
def set_bundled() -> Callable[..., None]:
    """``set_bundled(build, **settings)``: change settings ``build`` bakes in (``Build.bundle_settings``),
    which public pages and the content origin show (the gallery row holds the publisher's draft)."""

    def change(build: Build, **settings: object) -> None:
        build.bundle_settings = {**build.bundle_settings, **settings}
        Build.objects.filter(pk=build.pk).update(bundle_settings=build.bundle_settings)

    return change


@pytest.fixture
def other_gallery(db: None) -> Gallery:
    """A second approved gallery, with no owner and no build yet."""
    return Gallery.objects.create(
        title="Other", moderation_state=Gallery.ModerationState.APPROVED, database_name="other"
    )
