"""Publishers' pages on the app origin: "My galleries" and each gallery's management page.

Who may manage a gallery: its owner (a signed-in publisher), or, for a gallery uploaded
anonymously and not yet claimed, a browser session that uploaded it or opened the gallery's
private management link (``/manage/<gallery-id>/<token>/``). Anyone else gets 404, as for a
gallery that does not exist.

Claiming (moving an anonymous gallery into an account) never happens on a GET: a link can be
sent to anyone, so opening it only lets this browser manage the gallery. A signed-in holder
claims with the "Add this gallery to my account" button (a CSRF-checked POST, ``claim``).
Logging in or signing up claims only the galleries this very session uploaded
(``claim_session_galleries``, connected to ``user_logged_in``): a link that was merely
opened would otherwise plant a stranger's gallery in the account of whoever logs in next.

Sessions never hold a management token: only its sha256 (``ownership.management_token_hash``,
the same hash ``Gallery.management_key_hash`` stores). The token of an anonymous upload is
made when its build page is first drawn for the uploading session (``new_link_to_show``), so
it exists in that one response and in no server-side store.

Every change goes through ``gallery.services``.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from builder.sqlite_check import format_megabytes
from gallery import upload_limits
from gallery.content.preview import preview_url
from gallery.forms import DatabaseFileForm, EditGalleryForm
from gallery.models import Build, BuildReview, BuildState, Gallery
from gallery.ratelimits import (
    UPLOAD_RATE_GROUP,
    builds_limited,
    too_many_builds_message,
    too_many_uploads_message,
    upload_rate,
)
from gallery.services import galleries, moderation, ownership, publishing, quotas, uploads

logger = logging.getLogger(__name__)

#: Session key: ``{gallery_id: sha256 of its management token}`` of the galleries this browser
#: uploaded or opened the link of. Sessions live on the server (database); the browser holds
#: only the session id.
SESSION_GRANTS = "glasshouse_gallery_grants"
#: Session key: ``[gallery_id]`` of the galleries this browser uploaded anonymously; logging in claims them.
SESSION_UPLOADS = "glasshouse_uploaded_galleries"
#: Session key: ``[build_id]`` of the anonymous uploads whose build page has not shown the link yet.
SESSION_NEW_LINKS = "glasshouse_links_to_show"
#: Keys of sessions written before tokens were hashed: ``{gallery_id: token}`` and ``{build_id:
#: management URL}``. Read once by ``_grants``, hashed or dropped, and removed.
OLD_SESSION_GRANTS = "glasshouse_managed_galleries"
OLD_SESSION_NEW_LINKS = "glasshouse_new_management_links"
_OLD_LINK_PATH = re.compile(r"/manage/(?P<gallery_id>[^/]+)/[^/]+/$")


def _session_list(request: HttpRequest, key: str) -> list[str]:
    return list(request.session.get(key) or [])


def _add_to_session_list(request: HttpRequest, key: str, value: str) -> None:
    values = _session_list(request, key)
    if value not in values:
        request.session[key] = [*values, value]


def _upgrade_old_session(request: HttpRequest) -> None:
    """Rewrite a session of the plain-token format (before hashing) in the current one.

    Its plain grants become hashes (the browser keeps managing those galleries, but logging in
    no longer claims them: nothing tells an upload from an opened link). A management link it
    kept for a build page not yet seen names a gallery this session uploaded: that gallery counts
    as uploaded here, and the build page issues a new link (the old one was never shown).
    """
    session = request.session
    old_grants = session.pop(OLD_SESSION_GRANTS, None)
    old_links = session.pop(OLD_SESSION_NEW_LINKS, None)
    if old_grants:
        grants = dict(session.get(SESSION_GRANTS) or {})
        for gallery_id, token in old_grants.items():
            grants.setdefault(gallery_id, ownership.management_token_hash(str(token)))
        session[SESSION_GRANTS] = grants
    for build_id, link in (old_links or {}).items():
        match = _OLD_LINK_PATH.search(urlsplit(str(link)).path)
        if match:
            _add_to_session_list(request, SESSION_UPLOADS, match["gallery_id"])
            _add_to_session_list(request, SESSION_NEW_LINKS, build_id)


def _grants(request: HttpRequest) -> dict[str, str]:
    """``{gallery_id: token hash}`` this session holds (an old-format session is upgraded first)."""
    _upgrade_old_session(request)
    return dict(request.session.get(SESSION_GRANTS) or {})


def grant_session(request: HttpRequest, gallery: Gallery, token: str) -> None:
    """Let this browser session manage ``gallery`` while ``token`` is its management token.

    The session keeps only the token's hash.
    """
    grants = _grants(request)
    grants[gallery.pk] = ownership.management_token_hash(token)
    request.session[SESSION_GRANTS] = grants


def _holds_link(request: HttpRequest, gallery: Gallery) -> bool:
    """Whether the session holds ``gallery``'s current management link (a claimed gallery has none)."""
    return ownership.management_hash_matches(gallery, _grants(request).get(gallery.pk, ""))


def _may_manage(request: HttpRequest, gallery: Gallery) -> bool:
    user = request.user
    if user.is_authenticated and gallery.owner_id == user.pk:
        return True
    return gallery.owner_id is None and _holds_link(request, gallery)


def may_see_build_log(request: HttpRequest, gallery: Gallery) -> bool:
    """Whether this request may read the logs of ``gallery``'s builds.

    Who may manage the gallery (owner, a session holding its link) and staff who may view builds
    in the admin. A log can hold a traceback or names from the database; others see a build's
    steps, state, failure reason and warnings only.
    """
    user = request.user
    return _may_manage(request, gallery) or (user.is_staff and user.has_perm("gallery.view_build"))


def managed_gallery(request: HttpRequest, gallery_id: str) -> Gallery:
    """The gallery ``gallery_id`` if this request may manage it; raises ``Http404`` otherwise (also if deleted)."""
    gallery = Gallery.objects.not_deleted().filter(pk=gallery_id).select_related("live_build").first()
    if gallery is None or not _may_manage(request, gallery):
        raise Http404("You have no gallery at this address.")
    return gallery


def _actor(request: HttpRequest) -> Any:
    """The user to record in the audit log, or ``None`` for a holder of a management link."""
    return request.user if request.user.is_authenticated else None


def _session_galleries(request: HttpRequest) -> list[Gallery]:
    """Unclaimed galleries whose management link this session holds (uploaded here or opened)."""
    grants = _grants(request)
    if not grants:
        return []
    return [g for g in Gallery.objects.not_deleted().filter(pk__in=grants, owner__isnull=True) if _holds_link(request, g)]


def _claim(request: HttpRequest, gallery: Gallery, user: Any, how: str) -> bool:
    """Claim ``gallery`` for ``user`` with the session's grant; say how it went in a message; return whether it did.

    A gallery over the publisher's gallery quota stays unclaimed (and manageable through its link).
    """
    try:
        ownership.claim_gallery(gallery, user, _grants(request).get(gallery.pk, ""), how=how)
    except quotas.QuotaExceeded as exc:
        messages.warning(request, f"“{gallery.title}” was not added to your account: {exc.args[0]}", fail_silently=True)
    except ownership.ClaimRefused as exc:
        logger.info("gallery %s not claimed by user %s: %s", gallery.pk, user.pk, exc)
        messages.error(
            request, f"“{gallery.title}” could not be added to your account: its link changed or it has an owner.",
            fail_silently=True,
        )  # fmt: skip
    else:
        messages.success(request, f"“{gallery.title}” is now in your account.", fail_silently=True)
        return True
    return False


def claim_session_galleries(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: move the galleries this session uploaded into ``user``'s account.

    Only uploads made in this session (``SESSION_UPLOADS``) whose link the session still holds;
    a gallery whose link was merely opened here waits for the "Add this gallery to my account"
    button (``claim``). A gallery over the publisher's gallery quota stays unclaimed (and
    manageable through its link); the reason is shown as a message.
    """
    if request is None or not hasattr(request, "session"):
        return
    uploaded = set(_session_list(request, SESSION_UPLOADS))
    for gallery in _session_galleries(request):
        if gallery.pk in uploaded:
            _claim(request, gallery, user, "logged in after uploading it")


def _build_rows(gallery: Gallery) -> list[dict[str, Any]]:
    """The gallery's builds, newest first: ``{"build", "live", "review_note" (str), "preview_url" (str or None)}``.

    ``review_note`` says where a ready build stands with the moderators; a ready build waiting
    for review has a preview link (the publisher's only way to see it before approval).
    """
    to_review = moderation.build_to_review(gallery)
    rows = []
    for build in gallery.builds.all():
        waiting = build.state == BuildState.READY and not build.files_deleted and build.review == BuildReview.PENDING
        if build.review == BuildReview.REJECTED:
            note = "rejected by a moderator"
        elif not waiting:
            note = ""
        elif to_review is not None and build.pk == to_review.pk:
            note = "waits for a moderator before it goes live"
        else:
            note = "a newer version replaced it before review: it is never published"
        rows.append(
            {
                "build": build,
                "live": build.pk == gallery.live_build_id,
                "review_note": note,
                "preview_url": preview_url(build) if waiting else None,
            }
        )
    return rows


def _latest_builds() -> Prefetch:
    return Prefetch("builds", queryset=Build.objects.order_by("-created_at"))


@never_cache
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    """``/mine/``: the signed-in publisher's galleries (not deleted), and those this session holds the link of.

    Each with its moderation state and reason, view count and builds. A signed-in publisher
    also sees the unclaimed galleries this browser holds the link of, each with the button
    that adds it to the account. Anonymous without any link: redirect to the login page.
    """
    held = _session_galleries(request)
    if request.user.is_authenticated:
        galleries = list(
            Gallery.objects.not_deleted().filter(owner=request.user).select_related("live_build").prefetch_related(_latest_builds())
        )
    else:
        galleries, held = held, []
        if not galleries:
            return redirect_to_login(request.get_full_path())
    return render(
        request,
        "gallery/mine.html",
        {
            "galleries": galleries,
            "unclaimed": [g for g in galleries if g.owner_id is None],
            "held": held,
        },
    )


def _manage_page(
    request: HttpRequest, gallery: Gallery, *, upload_form: DatabaseFileForm | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "gallery/mine_gallery.html",
        {
            "gallery": gallery,
            "rows": _build_rows(gallery),
            "upload_form": upload_form or DatabaseFileForm(),
            "anonymous_holder": not request.user.is_authenticated,
            # A signed-in holder of the link: the gallery is not theirs until they press the button.
            "claimable": request.user.is_authenticated and gallery.owner_id is None,
            "uploaded_here": gallery.pk in _session_list(request, SESSION_UPLOADS),
            "max_size": format_megabytes(settings.UPLOAD_MAX_BYTES),
        },
        status=status,
    )


@never_cache
@require_GET
def manage(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """``/mine/<gallery-id>/``: builds with their logs and previews, and the actions."""
    return _manage_page(request, managed_gallery(request, gallery_id))


@require_GET
def management_link(request: HttpRequest, gallery_id: str, token: str) -> HttpResponse:
    """``/manage/<gallery-id>/<token>/``: the private link of an anonymous upload.

    Lets this browser session manage the gallery from now on (the session keeps the token's
    hash) and redirects to its management page. It never changes who owns the gallery, for
    anyone signed in or not: a link can be sent to anyone. A signed-in holder adds the gallery
    to their account with the button there (``claim``). A wrong token, or a gallery already
    claimed or deleted, is 404.
    """
    gallery = Gallery.objects.not_deleted().filter(pk=gallery_id, owner__isnull=True).first()
    if gallery is None or not ownership.management_token_matches(gallery, token):
        raise Http404("This management link is not valid (any more).")
    grant_session(request, gallery, token)
    return redirect("gallery:mine-gallery", gallery.pk)


@require_POST
def claim(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """``POST /mine/<gallery-id>/claim/``: add an unclaimed gallery whose link this session holds to the signed-in account.

    The "Add this gallery to my account" button of the management page and of My galleries;
    CSRF-checked by the middleware. Signed out: redirect to the login page. 404 for anyone who
    may not manage the gallery. Refusals (quota, a link that changed) come back as messages on
    the management page. Writes a ``claim`` audit record (``details.how``: ``"confirmed"``).
    """
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("gallery:mine-gallery", args=[gallery_id]))
    gallery = managed_gallery(request, gallery_id)
    if gallery.owner_id is None:
        _claim(request, gallery, request.user, "confirmed")
    return redirect("gallery:mine-gallery", gallery.pk)


@csrf_exempt  # checked by _new_version below, after the refusals that must not read the body
@require_POST
@ratelimit(group=UPLOAD_RATE_GROUP, key="ip", rate=upload_rate, method="POST", block=False)
def new_version(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """Upload a new version: a new build from a new file; redirects to its build page.

    Refused with the management page and a message: 429 over ``UPLOAD_RATE_LIMIT`` for a
    holder of the management link (signed-in owners have quotas instead) or over the build
    rate limits (``ratelimits.builds_limited``), 411/413 from the headers before the body is
    read, 413/400 for a file over the limit or a second file (``gallery.upload_limits``), 400 for a
    bad file or while another build of the gallery runs.
    """
    gallery = managed_gallery(request, gallery_id)
    refusal = upload_limits.refusal_before_reading(
        request,
        [
            (lambda: getattr(request, "limited", False), too_many_uploads_message),
            (lambda: builds_limited(request), too_many_builds_message),
        ],
    )
    if refusal is not None:
        return _refused_version(request, gallery, DatabaseFileForm(), refusal)
    return _new_version(request, gallery)


def _refused_version(
    request: HttpRequest, gallery: Gallery, form: DatabaseFileForm, refusal: upload_limits.UploadRefusal
) -> HttpResponse:
    upload_limits.show_refusal(form, refusal)
    return _manage_page(request, gallery, upload_form=form, status=refusal.status)


@csrf_protect
def _new_version(request: HttpRequest, gallery: Gallery) -> HttpResponse:
    refusal = upload_limits.refusal_after_reading(request)
    form = DatabaseFileForm(request.POST, request.FILES)
    if refusal is not None:
        return _refused_version(request, gallery, form, refusal)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            build = galleries.upload_new_version(gallery, upload=upload, filename=upload.name, by=_actor(request))
        except (uploads.UploadRejected, uploads.StorageUnavailable) as exc:
            form.add_error("file", exc.args[0])
        else:
            return redirect(build)
    return _manage_page(request, gallery, upload_form=form, status=400)


@require_POST
def rebuild(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """Rebuild the gallery from its stored upload (for example after a catalog update).

    Refused with a message on the management page over the build rate limits
    (``ratelimits.builds_limited``), while another build of the gallery runs, or over quotas.
    """
    gallery = managed_gallery(request, gallery_id)
    if builds_limited(request):
        messages.error(request, too_many_builds_message())
        return redirect("gallery:mine-gallery", gallery.pk)
    try:
        build = publishing.rebuild(gallery, by=_actor(request), as_publisher=True)
    except ValueError as exc:  # QuotaExceeded too (an UploadRejected, a ValueError)
        messages.error(request, exc.args[0])
        return redirect("gallery:mine-gallery", gallery.pk)
    return redirect(build)


@never_cache
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """Edit title, description, visibility, plugins, Datasette version and metadata."""
    gallery = managed_gallery(request, gallery_id)
    form = EditGalleryForm(request.POST or None, gallery=gallery)
    if request.method == "POST" and form.is_valid():
        try:
            needs_rebuild = galleries.update_gallery(gallery, **form.settings_arguments(), by=_actor(request))
        except uploads.UploadRejected as exc:
            form.add_error(None, exc.args[0])
        else:
            if needs_rebuild:
                messages.warning(
                    request,
                    "Saved. The gallery and its public page still show its current build: rebuild it (below) to "
                    "apply the new plugins, metadata, Datasette version, title or description"
                    + ("." if publishing.approval_for(request.user) else "; a moderator approves that build first."),
                )
            else:
                messages.success(request, "Saved.")
            return redirect("gallery:mine-gallery", gallery.pk)
    return render(
        request, "gallery/mine_edit.html", {"gallery": gallery, "form": form}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """GET: a confirmation page; POST: delete the gallery (a tombstone; its files are removed)."""
    gallery = managed_gallery(request, gallery_id)
    if request.method == "POST":
        moderation.delete_gallery(gallery, by=_actor(request))
        messages.success(request, f"“{gallery.title}” was deleted; readers who open it see that it is gone.")
        if request.user.is_authenticated:
            return redirect("gallery:mine")
        return redirect("gallery:index")
    return render(request, "gallery/mine_delete.html", {"gallery": gallery})


def remember_new_upload(request: HttpRequest, build: Build) -> None:
    """After an anonymous upload: this session uploaded ``build.gallery``, and ``build``'s page shows its link once.

    No token exists yet: ``new_link_to_show`` makes it when the build page is drawn.
    """
    _add_to_session_list(request, SESSION_UPLOADS, build.gallery_id)
    _add_to_session_list(request, SESSION_NEW_LINKS, build.pk)


def new_link_to_show(request: HttpRequest, build: Build) -> str | None:
    """The management link to show on ``build``'s page, once, after this session uploaded it anonymously.

    Makes the gallery's management token (``ownership.new_management_token``) and grants this
    session its hash; the token itself is only in the returned URL (absolute), which the page
    shows and nothing stores. ``None`` if this session has no link to see for ``build`` (any
    more), or if the gallery was claimed or deleted meanwhile.
    """
    _upgrade_old_session(request)
    pending = _session_list(request, SESSION_NEW_LINKS)
    if build.pk not in pending:
        return None
    pending.remove(build.pk)
    request.session[SESSION_NEW_LINKS] = pending
    gallery = build.gallery
    if gallery.owner_id is not None or gallery.is_deleted:
        return None
    token = ownership.new_management_token(gallery)
    grant_session(request, gallery, token)
    return request.build_absolute_uri(reverse("gallery:manage-link", args=[gallery.pk, token]))
