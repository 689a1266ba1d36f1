#!/usr/bin/env bash
# Make sure Node.js and npm are installed: npm fetches Pyodide from the npm registry, and the
# build worker boots every bundle once in Node (builder/compat.py) before publishing it.
#
# That check runs the publisher's bundle inside Node's permission model, so Node must be a release
# with the model's January 2026 security fixes (builder/compat.py, NODE_MINIMUM): 20.20.0+,
# 22.22.0+, 24.13.0+, 25.3.0+ or 26 and later. Debian 12's own nodejs (18.x) is too old: install
# one from https://nodejs.org/en/download or NodeSource's apt repository.
set -euo pipefail

# Prints nothing when the `node` on PATH can sandbox the check, else why not.
node_problem() {
    node -e '
const [major, minor, patch] = process.versions.node.split(".").map(Number);
const minimum = { 20: [20, 20, 0], 22: [22, 22, 0], 24: [24, 13, 0], 25: [25, 3, 0] }[major];
const atLeast = (v) => major > v[0] || (major === v[0] && (minor > v[1] || (minor === v[1] && patch >= v[2])));
if (!(major > 25 || (minimum && atLeast(minimum)))) {
  console.log(`Node.js ${process.version} cannot sandbox the build (needs 20.20.0+, 22.22.0+, 24.13.0+, 25.3.0+ or 26+)`);
}'
}

if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    problem=$(node_problem)
    if [ -z "$problem" ]; then
        exit 0
    fi
    echo "install-node.sh: $problem" >&2
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-node.sh: Node.js (20.20.0+, 22.22.0+, 24.13.0+, 25.3.0+ or 26+) and npm are needed; install them as root:" \
        "apt-get install nodejs npm, or from https://nodejs.org/en/download if your distribution's is older" >&2
    exit 1
fi
echo "Installing the distribution's nodejs and npm (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nodejs npm </dev/null
problem=$(node_problem)
if [ -n "$problem" ]; then
    echo "install-node.sh: $problem. Install a newer Node.js from https://nodejs.org/en/download" \
        "(or NodeSource's apt repository) and run this again." >&2
    exit 1
fi
node --version
