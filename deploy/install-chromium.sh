#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (Playwright drives
# it through executable_path; we never run `playwright install`, which downloads a
# browser build from outside the package registries).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-chromium.sh: Chromium is missing; install it as root: apt-get install chromium" >&2
    exit 1
fi
echo "Installing Debian's chromium (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium </dev/null
command -v chromium
