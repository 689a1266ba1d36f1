#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (Playwright drives
# it through executable_path; we never run `playwright install`, which downloads a
# browser build from outside the package registries).
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" chromium chromium
