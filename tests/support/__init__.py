"""Helpers the tests import, as ``from tests.support.<module> import ...``: not fixtures, not tests.

- ``chromium``: Chromium's command-line flags on these machines (also used by ``bench/``);
- ``fresh_process``: Python in a fresh interpreter, for tests of start-up;
- ``hostile_metadata``: metadata texts that would cost far more than their size to accept;
- ``loopback``: a stub HTTP server in a thread (the ``loopback_server`` fixture) and free ports;
- ``nginx``: ``deploy/nginx/`` rendered for a test machine and run with Debian's nginx;
- ``plugin_data``: the database and plugin groups of the plugin checks;
- ``process_wait``: waiting for a test's server process to answer over HTTP;
- ``service_worker``: stopping a gallery's Service Worker as a browser stops an idle one.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's root folder (where ``manage.py`` is).
REPO_ROOT = Path(__file__).resolve().parents[2]
