#!/usr/bin/env bash
# Put Pyodide's core runtime files where the settings look for them: $PYODIDE_RUNTIME_DIR, or
# <data>/runtime/pyodide-<version>/ (data folder: $GLASSHOUSE_DATA_DIR or ./var).
#
# The version and the tarball's integrity are the ones builder/pyodide.py pins (read from its
# `NAME = "value"` lines, so this works before the venv exists). Pyodide comes from the npm
# registry's `pyodide` package (its own CDN is not reachable from our machines); the tarball
# must match that sha512 integrity, or this stops with an error.
# Idempotent: does nothing when every file of that version is already in place.
#
# Usage: deploy/fetch-pyodide.sh   (`make runtime`; deploy/Dockerfile)
set -euo pipefail

cd "$(dirname "$0")/.."

# pin NAME: the value of `NAME = "value"` in builder/pyodide.py.
pin() {
    local value
    value=$(sed -n "s/^$1 = \"\(.*\)\"\$/\1/p" builder/pyodide.py)
    [ -n "$value" ] || { echo "fetch-pyodide.sh: no $1 = \"...\" line in builder/pyodide.py" >&2; exit 1; }
    printf '%s' "$value"
}
PYODIDE_VERSION=$(pin PYODIDE_VERSION)
PYODIDE_INTEGRITY=$(pin PYODIDE_INTEGRITY)
DATA_DIR=${GLASSHOUSE_DATA_DIR:-var}
DEST=${PYODIDE_RUNTIME_DIR:-$DATA_DIR/runtime/pyodide-$PYODIDE_VERSION}
CACHE="$DATA_DIR/cache/npm"
FILES=(pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip pyodide-lock.json package.json)

complete=1
for f in "${FILES[@]}"; do
    [ -s "$DEST/$f" ] || complete=0
done
# A folder of another version (PYODIDE_RUNTIME_DIR names one folder whatever the version) is replaced.
grep -q "\"version\": \"$PYODIDE_VERSION\"" "$DEST/package.json" 2>/dev/null || complete=0
if [ "$complete" = 1 ]; then
    echo "Pyodide $PYODIDE_VERSION runtime present in $DEST"
    exit 0
fi

command -v npm >/dev/null || { echo "fetch-pyodide.sh: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }

mkdir -p "$CACHE"
tarball="$CACHE/pyodide-$PYODIDE_VERSION.tgz"
if [ ! -s "$tarball" ]; then
    echo "Fetching pyodide@$PYODIDE_VERSION from the npm registry ..."
    (cd "$CACHE" && npm pack --silent "pyodide@$PYODIDE_VERSION" >/dev/null)
fi

# npm's integrity format: "sha512-" + base64 of the raw digest.
actual="sha512-$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
if [ "$actual" != "$PYODIDE_INTEGRITY" ]; then
    echo "fetch-pyodide.sh: $tarball does not match the pinned integrity" >&2
    echo "  expected $PYODIDE_INTEGRITY" >&2
    echo "  got      $actual" >&2
    rm -f "$tarball"
    exit 1
fi

work=$(mktemp -d "$CACHE/extract.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
for f in "${FILES[@]}"; do
    [ -s "$work/package/$f" ] || { echo "fetch-pyodide.sh: $f missing from the npm package" >&2; exit 1; }
done
# Copy into a sibling folder, then rename: a half-copied runtime is never visible.
mkdir -p "$(dirname "$DEST")"
staging="$DEST.partial.$$"
rm -rf "$staging"
mkdir -p "$staging"
for f in "${FILES[@]}"; do
    cp "$work/package/$f" "$staging/$f"
done
rm -rf "$DEST"
mv "$staging" "$DEST"
echo "Pyodide $PYODIDE_VERSION runtime installed in $DEST"
