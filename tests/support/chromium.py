"""Chromium's command-line flags on these machines, for every test and benchmark that launches it.

``tests.plugins.browsers`` launches the suite's browsers with them; ``bench/`` imports them too.
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
