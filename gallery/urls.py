"""URLs of the gallery app on the app origin, namespaced ``gallery:`` (``reverse("gallery:detail", ...)``).

Included at ``/`` by the root URLconf, ``gallery.project.urls``. Gallery content origins
(``<gallery-id>.<CONTENT_DOMAIN>``) never reach these: ``gallery.content.ContentOriginMiddleware``
answers them first.
"""

from __future__ import annotations

from django.urls import path

from gallery import publisher, views

app_name = "gallery"

urlpatterns = [
    path("", views.index, name="index"),
    path("g/<str:gallery_id>/", views.gallery_detail, name="detail"),
    path("g/<str:gallery_id>/report/", views.gallery_report, name="report"),
    path("g/<str:gallery_id>/report/thanks/", views.gallery_report_thanks, name="report-thanks"),
    path("g/<str:gallery_id>/embed.json", views.embed_code, name="embed-code"),
    path("oembed", views.oembed, name="oembed"),
    path("embed.js", views.embed_js, name="embed-js"),
    path("publish/", views.publish, name="publish"),
    path("plugins/", views.plugins, name="plugins"),
    path("builds/<str:build_id>/", views.build_detail, name="build"),
    path("builds/<str:build_id>/status.json", views.build_status, name="build-status"),
    path("healthz", views.healthz, name="healthz"),
    path("mine/", publisher.mine, name="mine"),
    path("mine/<str:gallery_id>/", publisher.manage, name="mine-gallery"),
    path("mine/<str:gallery_id>/new-version/", publisher.new_version, name="mine-new-version"),
    path("mine/<str:gallery_id>/rebuild/", publisher.rebuild, name="mine-rebuild"),
    path("mine/<str:gallery_id>/edit/", publisher.edit, name="mine-edit"),
    path("mine/<str:gallery_id>/delete/", publisher.delete, name="mine-delete"),
    path("mine/<str:gallery_id>/claim/", publisher.claim, name="mine-claim"),
    path("manage/<str:gallery_id>/<str:token>/", publisher.management_link, name="manage-link"),
]
