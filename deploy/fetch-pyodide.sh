#!/usr/bin/env bash
# Put Pyodide's core runtime files into <data>/runtime/pyodide-<version>/.
#
# Pyodide comes from the npm registry's `pyodide` package (its own CDN is not
# reachable from our machines). The tarball is checked against the sha512
# integrity pinned below (the value `npm view pyodide@<version> dist.integrity`
# printed when the pin was made); a mismatch stops with an error.
# Idempotent: does nothing when every file is already in place.
#
# Usage: deploy/fetch-pyodide.sh            (data folder: $GLASSHOUSE_DATA_DIR or ./var)
# Env:   PYODIDE_VERSION, PYODIDE_INTEGRITY  override the pins (the Makefile passes them)
set -euo pipefail

cd "$(dirname "$0")/.."

PYODIDE_VERSION=${PYODIDE_VERSION:-314.0.7}
PYODIDE_INTEGRITY=${PYODIDE_INTEGRITY:-sha512-0YvXxEhfEdpLfb/XkM2BFAeMROq0iMUX2bzzH9pOttyMcWkwq+HbE5uyuGD82LN7y2q+SNvi/6V5JEsOlD2R1A==}
DATA_DIR=${GLASSHOUSE_DATA_DIR:-var}
DEST="$DATA_DIR/runtime/pyodide-$PYODIDE_VERSION"
CACHE="$DATA_DIR/cache/npm"
FILES=(pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip pyodide-lock.json package.json)

complete=1
for f in "${FILES[@]}"; do
    [ -s "$DEST/$f" ] || complete=0
done
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
