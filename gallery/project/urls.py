"""Root URLs of the app origin (``ROOT_URLCONF``): the admin, django-allauth's accounts, and the
gallery app's own URLs (``gallery.urls``, namespaced ``gallery:``).

Gallery content origins (``<gallery-id>.<CONTENT_DOMAIN>``) never reach these:
``gallery.content.middleware.ContentOriginMiddleware`` answers them first.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # django-allauth: sign up, email verification, log in/out, password reset.
    path("accounts/", include("allauth.urls")),
    path("", include("gallery.urls")),
]
