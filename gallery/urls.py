"""URLs of the gallery app on the app origin, namespaced ``gallery:`` (``reverse("gallery:detail", ...)``).

Included at ``/`` by the root URLconf, ``gallery.project.urls``. Gallery content origins
(``<gallery-id>.<CONTENT_DOMAIN>``) never reach these: ``gallery.content.middleware.ContentOriginMiddleware``
answers them first.
"""

from __future__ import annotations

from django.urls import path

from gallery.views import builds, embeds, mine, public, publish, reports

app_name = "gallery"

urlpatterns = [
    path("", public.index, name="index"),
    path("g/<str:gallery_id>/", public.gallery_detail, name="detail"),
    path("g/<str:gallery_id>/report/", reports.gallery_report, name="report"),
    path("g/<str:gallery_id>/report/thanks/", reports.gallery_report_thanks, name="report-thanks"),
    path("g/<str:gallery_id>/embed.json", embeds.embed_code, name="embed-code"),
    path("oembed", embeds.oembed, name="oembed"),
    path("embed.js", embeds.embed_js, name="embed-js"),
    path("publish/", publish.publish, name="publish"),
    path("plugins/", public.plugins, name="plugins"),
    path("builds/<str:build_id>/", builds.build_detail, name="build"),
    path("builds/<str:build_id>/status.json", builds.build_status, name="build-status"),
    path("healthz", public.healthz, name="healthz"),
    path("mine/", mine.mine, name="mine"),
    path("mine/<str:gallery_id>/", mine.manage, name="mine-gallery"),
    path("mine/<str:gallery_id>/new-version/", mine.new_version, name="mine-new-version"),
    path("mine/<str:gallery_id>/rebuild/", mine.rebuild, name="mine-rebuild"),
    path("mine/<str:gallery_id>/edit/", mine.edit, name="mine-edit"),
    path("mine/<str:gallery_id>/delete/", mine.delete, name="mine-delete"),
    path("mine/<str:gallery_id>/claim/", mine.claim, name="mine-claim"),
    path("manage/<str:gallery_id>/<str:token>/", mine.management_link, name="manage-link"),
]
