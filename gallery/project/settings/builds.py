"""Builds: time limits, retries and the sweeper, the Pyodide runtime and wheel cache, temporary
files and old builds, and the limits of the check of an uploaded database."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from builder import pyodide
from gallery.project.env import env_bool, env_int, env_path
from gallery.project.settings.core import DATA_DIR

# --- Builds ---------------------------------------------------------------------

#: Seconds a build may run: at the soft limit it stops and fails cleanly; at the hard limit the
#: worker process running it is killed and the build fails (``worker_shell.tasks.BuildRequest``).
BUILD_SOFT_TIME_LIMIT = env_int("BUILD_SOFT_TIME_LIMIT", 600, minimum=1)
BUILD_HARD_TIME_LIMIT = env_int("BUILD_HARD_TIME_LIMIT", 720, minimum=1)
#: Retries of a build after a package-index (PyPI) fault, and the first backoff (s, doubling).
BUILD_MAX_RETRIES = env_int("BUILD_MAX_RETRIES", 3, minimum=0)
BUILD_RETRY_BACKOFF = env_int("BUILD_RETRY_BACKOFF", 5, minimum=1)
#: Times a worker may start one build: a build whose worker is lost (killed, out of memory) is
#: started again until then, and fails with the reason after that.
BUILD_MAX_ATTEMPTS = env_int("BUILD_MAX_ATTEMPTS", 3, minimum=1)
#: Seconds between two runs of the build sweeper (the task ``worker_shell.tasks.sweep_builds``, run by Celery beat).
BUILD_SWEEP_INTERVAL = env_int("BUILD_SWEEP_INTERVAL", 60, minimum=1)
#: Seconds a build may stay queued after it was sent before the sweeper sends it again (the
#: broker may have lost the message); a build that never reached the broker is sent at the next sweep.
BUILD_QUEUED_GRACE = env_int("BUILD_QUEUED_GRACE", 600, minimum=1)
#: Seconds past the hard time limit after which the sweeper treats a running build as lost
#: (its whole worker died): it starts it again, or fails it once ``BUILD_MAX_ATTEMPTS`` are used.
BUILD_RUNNING_GRACE = env_int("BUILD_RUNNING_GRACE", 120, minimum=1)
if BUILD_HARD_TIME_LIMIT <= BUILD_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"BUILD_HARD_TIME_LIMIT ({BUILD_HARD_TIME_LIMIT}) must be greater than "
        f"BUILD_SOFT_TIME_LIMIT ({BUILD_SOFT_TIME_LIMIT})"
    )
#: The Pyodide release bundles ship; written once, in builder/pyodide.py (make runtime fetches it).
PYODIDE_VERSION = pyodide.PYODIDE_VERSION
PYODIDE_RUNTIME_DIR = env_path("PYODIDE_RUNTIME_DIR", DATA_DIR / "runtime" / f"pyodide-{PYODIDE_VERSION}")
WHEEL_CACHE_DIR = env_path("WHEEL_CACHE_DIR", DATA_DIR / "cache" / "wheels")
GALLERY_AUTO_APPROVE = env_bool("GALLERY_AUTO_APPROVE", False)
#: Databases at least this long (bytes) are read lazily in readers' browsers: blocks fetched with
#: HTTP range requests as queries need them, where the browser can (builder.lazy_database); smaller
#: ones are downloaded whole, so the gallery then works offline entirely. 0: every database lazily.
LAZY_DATABASE_MIN_BYTES = env_int("LAZY_DATABASE_MIN_BYTES", 32 * 1024 * 1024, minimum=0)

# --- Build upkeep: temporary files, Node's heap, old builds (worker_shell.tempfiles, gallery.services.garbage) ---

#: Cap of Node's V8 heap in the build's compatibility check (``--max-old-space-size``, MB).
#: The database and Pyodide's wasm memory live outside that heap (ArrayBuffers), so it does not
#: grow with the upload: the check passed with 32 MB for 1 MB and 100 MB databases alike (also
#: 100 rows of 1 MB each; 16 MB runs out), while Node's own default here is about 4 GB. 256 MB
#: is 8 times what the 100 MB upload limit needs, room for plugins and wide pages, and a
#: runaway check fails with "ran out of memory in the compatibility check" instead of the machine.
BUILD_NODE_MAX_OLD_SPACE_MB = env_int("BUILD_NODE_MAX_OLD_SPACE_MB", 256, minimum=8)
#: Builds per gallery whose files garbage collection keeps (the newest; the live build and a
#: build waiting for review are kept whatever their age). See ``gallery.services.garbage``.
BUILDS_KEPT_PER_GALLERY = env_int("BUILDS_KEPT_PER_GALLERY", 5, minimum=1)

# --- The build's database check (builder.sqlite_check; issue 9, "Hostile or broken uploads") ---

#: Wall-clock seconds the check and canonical copy of one upload may take (the checker's child
#: process gets as many CPU seconds); then it is killed and the build fails with the reason. The
#: build's own soft time limit still applies (the child is killed with the build).
#: Checking and copying a 190 MB database (1.5 million rows, two indexes) took 1.6 s on these machines.
DATABASE_CHECK_SECONDS = env_int("DATABASE_CHECK_SECONDS", 300, minimum=1)
#: Address space of the checker's child process (``RLIMIT_AS``, MB). SQLite streams the file
#: through a small page cache, so this does not grow with the upload; it stops a hostile schema.
DATABASE_CHECK_MEMORY_MB = env_int("DATABASE_CHECK_MEMORY_MB", 512, minimum=64)
#: Tables and views a database may have together (full-text shadow tables included).
DATABASE_MAX_TABLES = env_int("DATABASE_MAX_TABLES", 1000, minimum=1)
#: Columns one table may have (SQLite's own maximum is 2000).
DATABASE_MAX_COLUMNS = env_int("DATABASE_MAX_COLUMNS", 1000, minimum=1)
#: Bytes of SQL in the schema (every CREATE statement together).
DATABASE_MAX_SCHEMA_BYTES = env_int("DATABASE_MAX_SCHEMA_BYTES", 2 * 1024 * 1024, minimum=1024)
