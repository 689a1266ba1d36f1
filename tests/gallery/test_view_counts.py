"""``gallery.view_counts``: a bootstrap GET counts a view in Redis (or, without Redis, in the web
process), and a flush adds the counts to ``Gallery.view_count``, losing and doubling none."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from gallery import view_counts
from gallery.models import Gallery
from gallery.view_counts import CLAIM_ABANDONED_AFTER, CLAIM_PREFIX, COUNTS_KEY, FlushResult, flush_view_counts
from tests.support.loopback import free_port

#: Largest value of PostgreSQL's bigint: one more view cannot be written.
BIGINT_MAX = 2**63 - 1


@pytest.fixture
def counts_redis(settings) -> Iterator[redis.Redis]:
    """A client of the Redis database of ``settings.REDIS_URL``, without view counts before and after the test."""
    if not settings.REDIS_URL:
        pytest.fail("REDIS_URL is not set: run the suite with `make test` (Redis database 15)")
    client = redis.Redis.from_url(settings.REDIS_URL)

    def clear() -> None:
        client.delete(COUNTS_KEY, *client.scan_iter(match=f"{CLAIM_PREFIX}*"))

    clear()
    yield client
    clear()
    client.close()


@pytest.fixture
def embedded(settings) -> Iterator[None]:
    """No ``REDIS_URL`` (``make run``'s defaults): this process counts views in its memory."""
    settings.REDIS_URL = ""
    settings.VIEW_COUNT_FLUSH_INTERVAL = 3600  # no timer flush unless a test asks for one
    yield
    view_counts._process_counts.take()  # no views left for a later test, or for this process's exit


@pytest.fixture(params=["redis", "embedded"])
def counting(request, counts_redis: redis.Redis) -> str:
    """Each counting mode in turn: ``"redis"`` (``REDIS_URL`` set) or ``"embedded"`` (``embedded``)."""
    if request.param == "embedded":
        request.getfixturevalue("embedded")
    return request.param


def view_count(gallery: Gallery) -> int:
    return Gallery.objects.values_list("view_count", flat=True).get(pk=gallery.pk)


def get_pages(content_client, times: int) -> None:
    for number in range(times):
        assert content_client.get(f"/chinook/album?page={number}").status_code == 200


def test_bootstrap_gets_write_nothing_to_the_database_and_a_flush_adds_them(
    counting, counts_redis, content_client, bundle, gallery, build
):
    with CaptureQueriesContext(connection) as queries:
        get_pages(content_client, 5)
        content_client.head("/")
        content_client.get("/sw.js")
    assert not [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert view_count(gallery) == 0
    if counting == "redis":
        assert counts_redis.hgetall(COUNTS_KEY) == {gallery.pk.encode(): b"5"}
    else:
        assert not counts_redis.exists(COUNTS_KEY)

    assert flush_view_counts() == FlushResult(galleries=1, views=5)
    assert view_count(gallery) == 5
    assert flush_view_counts() == FlushResult()
    assert view_count(gallery) == 5
    assert not counts_redis.keys(f"{COUNTS_KEY}*")


def test_views_counted_while_a_flush_runs_go_to_the_next_flush(counts_redis, content_client, bundle, gallery, build):
    get_pages(content_client, 3)
    claim = view_counts.claim_counts(counts_redis)  # a flush has claimed the counts...
    assert claim is not None
    get_pages(content_client, 2)  # ...readers arrive meanwhile...
    assert view_counts.apply_claims(counts_redis, [claim]) == FlushResult(galleries=1, views=3)  # ...it ends
    assert view_count(gallery) == 3
    assert flush_view_counts() == FlushResult(galleries=1, views=2)
    assert view_count(gallery) == 5


class ViewsBetweenCommands:
    """A Redis client for a flush that lets a reader's view in before each command the flush sends."""

    def __init__(self, client: redis.Redis, gallery_id: str) -> None:
        self._client = client
        self._gallery_id = gallery_id
        self.views = 0

    def __getattr__(self, name: str) -> object:
        command = getattr(self._client, name)
        if not callable(command):
            return command

        def with_a_view_first(*args: object, **kwargs: object) -> object:
            view_counts.count_view(self._gallery_id)
            self.views += 1
            return command(*args, **kwargs)

        return with_a_view_first


def test_a_view_counted_between_any_two_commands_of_a_flush_is_counted_once(counts_redis, content_client, bundle, gallery, build):
    get_pages(content_client, 3)
    interleaved = ViewsBetweenCommands(counts_redis, gallery.pk)
    first = flush_view_counts(interleaved)  # type: ignore[arg-type]
    assert interleaved.views >= 4  # EXISTS, TIME, RENAME, HGETALL, DEL at least
    second = flush_view_counts()
    assert first.views + second.views == 3 + interleaved.views
    assert view_count(gallery) == 3 + interleaved.views


def test_two_flushes_at_once_never_add_the_same_views(counts_redis, content_client, bundle, gallery, build):
    get_pages(content_client, 3)
    first = view_counts.claim_counts(counts_redis)
    assert first is not None
    get_pages(content_client, 2)
    # A second flush while the first still runs: it takes only what came after the first claim,
    # and leaves the first flush's claim alone (it is not old enough to be abandoned).
    assert flush_view_counts() == FlushResult(galleries=1, views=2)
    assert view_counts.apply_claims(counts_redis, [first]) == FlushResult(galleries=1, views=3)
    assert view_count(gallery) == 5
    assert flush_view_counts() == FlushResult()


def test_a_claim_abandoned_by_a_flush_that_died_is_added_by_a_later_one(counts_redis, content_client, bundle, gallery, build):
    get_pages(content_client, 3)
    now, _ = counts_redis.time()
    # What a flush killed at its time limit leaves behind: counts claimed long ago, never deleted.
    counts_redis.rename(COUNTS_KEY, f"{CLAIM_PREFIX}{now - CLAIM_ABANDONED_AFTER - 1}:dead")
    get_pages(content_client, 1)
    assert flush_view_counts() == FlushResult(galleries=1, views=4)
    assert view_count(gallery) == 4
    assert not counts_redis.keys(f"{COUNTS_KEY}*")


def test_a_flush_whose_database_update_fails_keeps_every_count(
    counting, counts_redis, content_client, bundle, gallery, build, other_gallery
):
    get_pages(content_client, 2)
    view_counts.count_view(other_gallery.pk)
    # A real failure of the one transaction: one more view would overflow the column.
    Gallery.objects.filter(pk=gallery.pk).update(view_count=BIGINT_MAX)
    with pytest.raises(DatabaseError, match="out of range"):
        flush_view_counts()
    assert view_count(gallery) == BIGINT_MAX
    assert view_count(other_gallery) == 0  # all or nothing
    if counting == "redis":
        assert counts_redis.hgetall(COUNTS_KEY) == {gallery.pk.encode(): b"2", other_gallery.pk.encode(): b"1"}
        assert not counts_redis.keys(f"{CLAIM_PREFIX}*")

    get_pages(content_client, 1)  # still counted while the database refuses
    Gallery.objects.filter(pk=gallery.pk).update(view_count=0)
    assert flush_view_counts() == FlushResult(galleries=2, views=4)
    assert (view_count(gallery), view_count(other_gallery)) == (3, 1)


def test_views_of_a_gallery_deleted_before_the_flush_are_skipped(counting, content_client, bundle, gallery, build, other_gallery):
    get_pages(content_client, 2)
    view_counts.count_view(other_gallery.pk)
    view_counts.count_view("gonegonegone")  # a row that no longer exists
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.DELETED)
    assert flush_view_counts() == FlushResult(galleries=1, views=1, skipped=3)
    assert (view_count(gallery), view_count(other_gallery)) == (0, 1)


@pytest.fixture
def fresh_fault_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault log that has logged nothing yet in this process (it logs at most once a minute)."""
    monkeypatch.setattr(view_counts, "_faults", view_counts._FaultLog())


def test_a_redis_that_is_down_still_serves_the_page_and_says_so_once(
    settings, fresh_fault_log, content_client, bundle, gallery, build, caplog
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    for _ in range(3):
        response = content_client.get("/")
        assert response.status_code == 200
        assert b"<!doctype html>" in response.content.lower()
    lost = [r.getMessage() for r in caplog.records if r.name == "gallery.view_counts"]
    assert len(lost) == 1 and "1 view(s) not counted" in lost[0]
    assert view_count(gallery) == 0
    with pytest.raises(redis.ConnectionError):
        flush_view_counts()  # the beat task fails visibly instead


def test_a_redis_that_hangs_delays_the_page_by_at_most_the_request_timeout(
    settings, fresh_fault_log, private_redis, content_client, bundle, gallery, build
):
    settings.REDIS_URL = f"redis://127.0.0.1:{private_redis.port}/0"
    get_pages(content_client, 1)  # the pool's connection is open before the freeze
    private_redis.freeze()
    try:
        started = time.monotonic()
        assert content_client.get("/").status_code == 200
        # Generous: this checks that the page is not held until Redis answers, not a speed.
        assert time.monotonic() - started < view_counts.REQUEST_TIMEOUT + 5
    finally:
        private_redis.thaw()


@pytest.mark.django_db(transaction=True)
def test_without_redis_the_web_process_writes_its_counts_after_the_interval(
    settings, embedded, content_client, bundle, gallery, build
):
    settings.VIEW_COUNT_FLUSH_INTERVAL = 1
    get_pages(content_client, 2)
    assert view_count(gallery) == 0
    deadline = time.monotonic() + 10
    while view_count(gallery) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert view_count(gallery) == 2
