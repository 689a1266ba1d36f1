#!/usr/bin/env bash
# Usage: apt-install.sh COMMAND PACKAGE [APT-GET OPTION...]
# Make sure COMMAND is available (on PATH or in /usr/sbin); if not, install Debian's PACKAGE
# as root (with any further arguments passed to `apt-get install`, e.g. --no-install-recommends),
# or say which package to install. Used by `make nginx` (nginx-light for the tests that run
# deploy/nginx/ in front of the test servers, docker-compose for the one that validates
# deploy/compose.yaml), `make webkit` (WebKitGTK's WebDriver and Xvfb) and deploy/install-chromium.sh.
set -euo pipefail

command=$1 package=$2
shift 2
if command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "apt-install.sh: $command is missing; install it as root: apt-get install ${*:+$* }$package" >&2
    exit 1
fi
echo "Installing Debian's $package (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$@" "$package" </dev/null
