"""Rate limits per client address behind a proxy (``gallery.ratelimits``).

nginx (``deploy/nginx/app.conf``) passes the client's address in ``X-Real-IP`` and appends
it to ``X-Forwarded-For``; ``RATELIMIT_IP_META_KEY`` (the setting ``CLIENT_IP_META_KEY``) says
which header to believe. Without it only the socket's address counts, whatever a client claims.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse

from gallery.models import Build, hash_ip
from gallery.ratelimits import client_ip

pytestmark = pytest.mark.django_db

PUBLISH = reverse("gallery:publish")
JSON = {"HTTP_ACCEPT": "application/json"}
#: Every request reaches Django from the proxy on loopback.
PROXY = "127.0.0.1"


@pytest.fixture(autouse=True)
def one_upload_an_hour(settings) -> None:
    settings.UPLOAD_RATE_LIMIT = "1/h"


def publish(client, upload_data, **headers: str) -> int:
    return client.post(PUBLISH, upload_data(), REMOTE_ADDR=PROXY, **headers, **JSON).status_code


def test_behind_nginx_each_x_real_ip_is_limited_on_its_own(client, upload_data, settings):
    settings.CLIENT_IP_META_KEY = "HTTP_X_REAL_IP"
    assert publish(client, upload_data, HTTP_X_REAL_IP="203.0.113.5") == 200
    assert publish(client, upload_data, HTTP_X_REAL_IP="203.0.113.5") == 429, "the same client is limited"
    assert publish(client, upload_data, HTTP_X_REAL_IP="198.51.100.7") == 200, "another client is not"
    assert sorted(Build.objects.values_list("gallery__uploader_ip_hash", flat=True)) == sorted(
        [hash_ip("203.0.113.5"), hash_ip("198.51.100.7")]
    ), "the address recorded is the one limited"


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP"])
def test_without_the_setting_a_client_cannot_dodge_the_limit_with_its_own_header(client, upload_data, settings, header):
    settings.CLIENT_IP_META_KEY = ""
    assert publish(client, upload_data, **{header: "203.0.113.1"}) == 200
    assert publish(client, upload_data, **{header: "203.0.113.2"}) == 429
    assert publish(client, upload_data, **{header: "198.51.100.3, 203.0.113.3"}) == 429


def test_with_x_forwarded_for_the_right_most_address_the_proxy_added_counts(client, upload_data, settings):
    settings.CLIENT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    # nginx appends the peer's address ($proxy_add_x_forwarded_for): what is left of it, the client wrote.
    assert publish(client, upload_data, HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.9") == 200
    assert publish(client, upload_data, HTTP_X_FORWARDED_FOR="10.0.0.2, 203.0.113.9") == 429
    assert publish(client, upload_data, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.4") == 200


@pytest.mark.parametrize(
    ("key", "meta", "expected"),
    [
        ("", {"HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "192.0.2.10"),
        ("HTTP_X_REAL_IP", {"HTTP_X_REAL_IP": " 2001:DB8::1 "}, "2001:db8::1"),
        ("HTTP_X_REAL_IP", {}, "192.0.2.10"),
        ("HTTP_X_REAL_IP", {"HTTP_X_REAL_IP": "not an address"}, "192.0.2.10"),
        ("HTTP_X_FORWARDED_FOR", {"HTTP_X_FORWARDED_FOR": "198.51.100.1,198.51.100.2"}, "198.51.100.2"),
        ("HTTP_X_FORWARDED_FOR", {"HTTP_X_FORWARDED_FOR": "198.51.100.1, unknown"}, "192.0.2.10"),
        ("REMOTE_ADDR", {"HTTP_X_REAL_IP": "198.51.100.1"}, "192.0.2.10"),
    ],
    ids=["no setting", "x-real-ip v6", "header missing", "not an address", "right-most", "junk right-most", "remote"],
)
def test_client_ip_reads_the_configured_header_and_falls_back_to_the_socket(settings, key, meta, expected):
    settings.CLIENT_IP_META_KEY = key
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10", **meta)
    assert client_ip(request) == expected


def test_a_junk_header_does_not_break_the_publish_form(client, upload_data, settings):
    settings.CLIENT_IP_META_KEY = "HTTP_X_REAL_IP"
    assert publish(client, upload_data, HTTP_X_REAL_IP="<script>") == 200
    assert publish(client, upload_data, HTTP_X_REAL_IP="also junk") == 429, "junk falls back to the proxy's address"
