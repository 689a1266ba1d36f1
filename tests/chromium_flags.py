"""Chromium's command-line flags on these machines, for every test that launches it.

A module of its own (not ``conftest``): ``from conftest import ...`` in a test resolves to
whichever ``conftest`` pytest imported first, ``tests/worker_shell/conftest.py`` in a full run.
"""

#: As root Chromium needs --no-sandbox, and without the background-networking flags it keeps
#: dialling Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
