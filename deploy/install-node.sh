#!/usr/bin/env bash
# Make sure Node.js and npm are installed: npm fetches Pyodide from the npm registry, and the
# build worker boots every bundle once in Node (builder/compat.py) before publishing it.
set -euo pipefail

MIN_MAJOR=18
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -ge "$MIN_MAJOR" ]; then
        exit 0
    fi
    echo "install-node.sh: Node.js $(node --version) is older than $MIN_MAJOR" >&2
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-node.sh: Node.js >= $MIN_MAJOR and npm are needed; install them as root: apt-get install nodejs npm" >&2
    exit 1
fi
echo "Installing Debian's nodejs and npm (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nodejs npm </dev/null
node --version
