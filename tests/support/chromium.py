"""Chromium's command-line flags on these machines, for every test and benchmark that launches it.

``tests.plugins.browsers`` launches the suite's browsers with ``launch_args()``; ``bench/`` imports
``CHROMIUM_ARGS``.
"""

from __future__ import annotations

import re
from pathlib import Path

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

#: Chromium's own window furniture, which a headless browser never shows: Chromium 156 renders each
#: window's address-bar popup as a WebUI page (``chrome://omnibox-popup.top-chrome``) in a renderer
#: process of its own, started with every window. Measured here: about 0.6 CPU-seconds in that
#: renderer and 0.15 more in the browser process per window, whatever the page shows; every
#: browser context a test opens has at least one window. Disabling it changes nothing a page or
#: gallery can see.
UNSHOWN_BROWSER_UI = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "WebUIOmniboxFullPopup")

#: The feature Playwright disables that real browsers keep: without it a cross-site iframe gets no storage.
STORAGE_PARTITIONING = "ThirdPartyStoragePartitioning"


def playwright_disabled_features() -> list[str]:
    """The ``--disable-features`` list Playwright passes to Chromium, read from the installed driver.

    Parsed from ``chromiumSwitches`` in the driver package (``disabledFeatures = [...]``), so a
    Playwright upgrade changes it here too. Raises ``LookupError`` if the list cannot be found.
    """
    import playwright

    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for source in (lib / "coreBundle.js", lib / "server" / "chromium" / "chromiumSwitches.js"):
        if source.is_file():
            match = re.search(r"disabledFeatures = \[(.*?)\]", source.read_text(), re.DOTALL)
            if match:
                return re.findall(r'^\s*"([^"]+)"', match.group(1), re.MULTILINE)
    raise LookupError(f"Playwright's disabledFeatures list was not found under {lib}: update playwright_disabled_features()")


def launch_args(*, storage_partitioned: bool = False) -> list[str]:
    """``CHROMIUM_ARGS`` plus one ``--disable-features=`` flag: Playwright's list and ``UNSHOWN_BROWSER_UI``.

    Chromium reads only the last ``--disable-features=`` flag, and Playwright puts its own before
    the caller's, so this one must repeat Playwright's list. With ``storage_partitioned``, the list
    leaves out ``STORAGE_PARTITIONING``: cross-site iframes then get partitioned storage, as in
    current Chrome, Firefox and Safari; without it they get none, as Playwright's default has it.
    Raises ``LookupError`` (``playwright_disabled_features``), or ``AssertionError`` if Playwright
    no longer disables ``STORAGE_PARTITIONING``.
    """
    features = playwright_disabled_features()
    assert STORAGE_PARTITIONING in features, features
    if storage_partitioned:
        features = [name for name in features if name != STORAGE_PARTITIONING]
    return [*CHROMIUM_ARGS, f"--disable-features={','.join([*features, *UNSHOWN_BROWSER_UI])}"]
