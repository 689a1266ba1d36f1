"""Views of a gallery's public origin, counted without a database write per page load.

A GET of the bootstrap page of a gallery's public origin (``gallery.content.bootstrap.serve_bootstrap``)
calls ``count_view``; ``flush_view_counts`` adds what was counted to ``Gallery.view_count``
(shown on "My galleries" and in the admin) in one transaction.

**With ``REDIS_URL``** (production, ``make test``):

- ``count_view`` is one ``HINCRBY glasshouse:view-counts <gallery id> 1``. A Redis fault (down,
  or no answer within ``REQUEST_TIMEOUT`` seconds; no retries) loses that view and is logged, at
  most once per ``FAULT_LOG_INTERVAL`` seconds per process with the number lost: the reader's
  page never fails because of it.
- Celery beat sends ``worker_shell.maintenance.flush_view_counts`` every
  ``VIEW_COUNT_FLUSH_INTERVAL`` seconds. A flush claims the hash with one ``RENAME`` to a key
  of its own, ``glasshouse:view-counts:claimed:<Redis server time, s>:<random>``: views counted
  after that go into a new hash, for the next flush, and two flushes at once claim disjoint
  counts. It adds the claimed counts to the rows in one transaction (galleries deleted meanwhile,
  or tombstoned, are skipped) and then deletes its key.
- If the database update fails, the claimed counts go back into the hash (one ``MULTI``) and the
  error is raised: the next flush adds them. A claimed key that outlived its flush (the flush was
  killed at its time limit, or Redis was gone when it tried to put the counts back) is adopted by
  a later flush once older than ``CLAIM_ABANDONED_AFTER`` seconds, longer than a flush may run.
  The one window left: a flush that dies, or loses Redis, after its transaction committed and
  before its ``DEL`` leaves a key a later flush adds again. Closing it would take a record of
  applied claims in the database; for a count of page loads, we accept it (it is logged).

**Without ``REDIS_URL``** (``make run``'s embedded defaults: filesystem broker, a LocMem cache per
process): the web processes and the worker share no memory or cache, so a beat task cannot see
the counts. Each web process counts in its own memory instead and adds its counts to the database
itself, ``VIEW_COUNT_FLUSH_INTERVAL`` seconds after the first view it has not yet written (a
timer thread), and when the process exits (``atexit``): one UPDATE per gallery per interval per
process, not one per page load, so page loads do not queue on SQLite's single write lock (which
the build worker shares). Counts of a process killed without warning (SIGKILL) are lost, and
"My galleries" lags by up to the interval, as it does with Redis. The beat task then finds
nothing to flush in the worker's own memory.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, PositiveBigIntegerField, Value, When
from redis.backoff import NoBackoff
from redis.retry import Retry

from gallery.models import Gallery

logger = logging.getLogger(__name__)

#: The hash of views not yet in the database: field = gallery id, value = views.
COUNTS_KEY = "glasshouse:view-counts"
#: Prefix of a hash claimed by a flush, followed by ``<Redis server time, s>:<random hex>``.
CLAIM_PREFIX = f"{COUNTS_KEY}:claimed:"
#: Seconds a page load may wait on Redis (connect, then answer) before the view is given up.
REQUEST_TIMEOUT = 0.5
#: Seconds one Redis command of a flush may take.
FLUSH_REDIS_TIMEOUT = 10.0
#: Hard time limit of the flush task (s): Celery kills a flush that runs longer.
FLUSH_TIME_LIMIT = 120
#: Seconds after which a claimed key counts as abandoned by its flush and is adopted.
CLAIM_ABANDONED_AFTER = 5 * FLUSH_TIME_LIMIT
#: Seconds between two log lines about views lost to Redis faults, per process.
FAULT_LOG_INTERVAL = 60.0
#: Galleries per UPDATE statement of a flush.
UPDATE_BATCH = 500


@dataclass(frozen=True)
class FlushResult:
    """What one flush added: ``galleries`` rows updated, ``views`` added to them, and
    ``skipped`` views of galleries that were deleted (or tombstoned) meanwhile."""

    galleries: int = 0
    views: int = 0
    skipped: int = 0


# --- Counting (the request path) -------------------------------------------------------------


def count_view(gallery_id: str) -> None:
    """Count one view of gallery ``gallery_id``; never raises for a Redis or database fault.

    With ``settings.REDIS_URL``: one ``HINCRBY`` (at most ``REQUEST_TIMEOUT`` s); else in this
    process's memory (see the module docstring).
    """
    if not settings.REDIS_URL:
        _process_counts.add(gallery_id)
        return
    try:
        _client(settings.REDIS_URL, REQUEST_TIMEOUT).hincrby(COUNTS_KEY, gallery_id, 1)
    except redis.RedisError as exc:
        _faults.lost_one(exc)


class _FaultLog:
    """Logs views lost to Redis faults: the first at once, then at most once per interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lost = 0
        self._logged_at = float("-inf")

    def lost_one(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._lost += 1
            if now - self._logged_at < FAULT_LOG_INTERVAL:
                return
            lost, self._lost, self._logged_at = self._lost, 0, now
        # The URL is not logged: it may hold Redis's password.
        logger.warning("Redis (REDIS_URL) did not take a gallery view (%s): %d view(s) not counted", exc, lost)


_faults = _FaultLog()
_clients: dict[tuple[str, float], redis.Redis] = {}


def _client(url: str, timeout: float) -> redis.Redis:
    """One client (and connection pool) per URL and timeout, made on first use.

    No retries: a page load must not wait for them, and a retried ``RENAME`` whose first try
    succeeded unseen would move newer views onto the claimed key, over the claimed ones.
    """
    client = _clients.get((url, timeout))
    if client is None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        _clients[(url, timeout)] = client
    return client


# --- Flushing into Gallery.view_count ----------------------------------------------------------


def flush_view_counts(client: redis.Redis | None = None) -> FlushResult:
    """Add the views counted so far to ``Gallery.view_count``, in one transaction.

    With ``settings.REDIS_URL``: the counts in Redis, through ``client`` (default: one of
    ``REDIS_URL``), by ``claim_counts`` then ``apply_claims``, adopting claims abandoned by dead
    flushes; else this process's own counts. Raises the ``DatabaseError`` of a failed update
    after putting the counts back (nothing is lost), and ``redis.RedisError`` if Redis cannot be
    reached (the counts stay in Redis).
    """
    if not settings.REDIS_URL:
        return _process_counts.flush()
    client = client or _client(settings.REDIS_URL, FLUSH_REDIS_TIMEOUT)
    claims = adopt_abandoned_claims(client)
    claim = claim_counts(client)
    if claim is not None:
        claims.append(claim)
    return apply_claims(client, claims)


def claim_counts(client: redis.Redis) -> str | None:
    """Move the hash of counts to a new claimed key (one atomic ``RENAME``); return that key.

    ``None`` when nothing was counted since the last claim. Views counted from then on go into
    a new hash.
    """
    if not client.exists(COUNTS_KEY):
        return None
    claim = _new_claim_key(client)
    try:
        client.rename(COUNTS_KEY, claim)
    except redis.ResponseError:  # "no such key": another flush claimed it after EXISTS
        return None
    return claim


def adopt_abandoned_claims(client: redis.Redis) -> list[str]:
    """Take over claimed keys older than ``CLAIM_ABANDONED_AFTER`` s (their flush died); return the new keys.

    Each is renamed to a key of this flush first, so two flushes never adopt the same one.
    """
    now = _server_time(client)
    adopted = []
    for key in client.scan_iter(match=f"{CLAIM_PREFIX}*", count=100):
        name = key.decode()
        claimed_at, _, _ = name.removeprefix(CLAIM_PREFIX).partition(":")
        if not claimed_at.isdigit() or now - int(claimed_at) <= CLAIM_ABANDONED_AFTER:
            continue
        mine = _new_claim_key(client)
        try:
            client.rename(name, mine)
        except redis.ResponseError:  # adopted by another flush meanwhile
            continue
        logger.warning("adopting view counts %s, abandoned by a flush that did not finish", name)
        adopted.append(mine)
    return adopted


def apply_claims(client: redis.Redis, claims: list[str]) -> FlushResult:
    """Add the counts of the claimed keys ``claims`` to the database, then delete the keys.

    If the database update fails, the counts go back into the hash and the keys are deleted (one
    ``MULTI``), and the ``DatabaseError`` is raised.
    """
    if not claims:
        return FlushResult()
    counts: Counter[str] = Counter()
    for claim in claims:
        for gallery_id, views in client.hgetall(claim).items():
            counts[gallery_id.decode() if isinstance(gallery_id, bytes) else gallery_id] += int(views)
    try:
        result = add_views(counts)
    except DatabaseError:
        with client.pipeline(transaction=True) as put_back:
            for gallery_id, count in counts.items():
                put_back.hincrby(COUNTS_KEY, gallery_id, count)
            put_back.delete(*claims)
            put_back.execute()
        logger.exception("view counts of %d galleries not written; put back for the next flush", len(counts))
        raise
    try:
        client.delete(*claims)
    except redis.RedisError:
        logger.exception(
            "view counts %s were written but not deleted: a later flush adds them again unless they are deleted "
            "by hand within %d s", ", ".join(claims), CLAIM_ABANDONED_AFTER,
        )  # fmt: skip
        raise
    return result


def add_views(counts: Mapping[str, int]) -> FlushResult:
    """Add ``counts`` (gallery id -> views) to ``Gallery.view_count`` in one transaction.

    Galleries that no longer exist, or are tombstones, are skipped. Rows are locked in id
    order, so concurrent flushes cannot deadlock. Raises ``DatabaseError`` (nothing written).
    """
    wanted = {gallery_id: views for gallery_id, views in counts.items() if views > 0}
    galleries = views_added = 0
    with transaction.atomic():
        for batch in itertools.batched(sorted(wanted), UPDATE_BATCH):
            present = list(
                Gallery.objects.filter(pk__in=batch)
                .exclude(moderation_state=Gallery.ModerationState.DELETED)
                .order_by("pk")
                .select_for_update()
                .values_list("pk", flat=True)
            )
            if not present:
                continue
            increment = Case(
                *(When(pk=gallery_id, then=Value(wanted[gallery_id])) for gallery_id in present),
                output_field=PositiveBigIntegerField(),
            )
            Gallery.objects.filter(pk__in=present).update(view_count=F("view_count") + increment)
            galleries += len(present)
            views_added += sum(wanted[gallery_id] for gallery_id in present)
    return FlushResult(galleries=galleries, views=views_added, skipped=sum(wanted.values()) - views_added)


def _server_time(client: redis.Redis) -> int:
    """Redis's clock in whole seconds: the same for every machine that flushes."""
    seconds, _ = client.time()
    return int(seconds)


def _new_claim_key(client: redis.Redis) -> str:
    return f"{CLAIM_PREFIX}{_server_time(client)}:{secrets.token_hex(8)}"


# --- Embedded mode: counts in this process's memory ---------------------------------------------


class _ProcessCounts:
    """Views counted in this process (no ``REDIS_URL``), written by a timer thread and at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._timer: threading.Timer | None = None
        self._exit_hook = False

    def add(self, gallery_id: str) -> None:
        self.put_back([(gallery_id, 1)])

    def put_back(self, counts: Iterable[tuple[str, int]]) -> None:
        """Add ``(gallery id, views)`` pairs; a flush follows within ``VIEW_COUNT_FLUSH_INTERVAL`` s."""
        with self._lock:
            for gallery_id, views in counts:
                self._counts[gallery_id] += views
            if not self._exit_hook:
                atexit.register(self.flush_quietly)
                self._exit_hook = True
            if self._timer is None:
                self._timer = threading.Timer(settings.VIEW_COUNT_FLUSH_INTERVAL, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.start()

    def take(self) -> Counter[str]:
        """Remove and return the counts, and stop the timer (the next view starts one)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return counts

    def flush(self) -> FlushResult:
        """Write the counts (``add_views``); on ``DatabaseError`` put them back and raise it."""
        counts = self.take()
        if not counts:
            return FlushResult()
        try:
            return add_views(counts)
        except DatabaseError:
            self.put_back(counts.items())
            raise

    def flush_quietly(self) -> None:
        """``flush``, logging a database fault instead of raising it (timer thread, exit)."""
        try:
            self.flush()
        except DatabaseError:
            logger.exception("view counts not written; kept in this process for the next try")

    def _flush_from_timer(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush_quietly()
        finally:
            connection.close()  # this thread's own connection; the thread ends here


_process_counts = _ProcessCounts()
