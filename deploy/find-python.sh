#!/usr/bin/env bash
# Print the path of the first Python interpreter >= 3.12 (Glasshouse supports 3.12 and 3.13).
# Looks, in order, at: $PYTHON (if set, it must qualify), python3.13 and python3.12 on PATH, then pyenv's
# $(pyenv root)/versions/3.1[2-9]*/bin/python. Each candidate is run to check its version.
set -euo pipefail

ok() {
    # True when "$1" runs and reports a version >= 3.12.
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

# An explicit choice is honoured or refused, never silently replaced.
if [ -n "${PYTHON:-}" ]; then
    if ok "$PYTHON"; then
        command -v "$PYTHON"
        exit 0
    fi
    echo "find-python.sh: PYTHON=$PYTHON does not run or is older than 3.12." >&2
    echo "Glasshouse supports Python 3.12 and 3.13; unset PYTHON to let find-python.sh search." >&2
    exit 1
fi

candidates=()
for name in python3.13 python3.12; do
    if path=$(command -v "$name" 2>/dev/null); then candidates+=("$path"); fi
done
pyenv_root=""
if command -v pyenv >/dev/null 2>&1; then
    pyenv_root=$(pyenv root 2>/dev/null || true)
fi
pyenv_root=${pyenv_root:-${PYENV_ROOT:-$HOME/.pyenv}}
for path in "$pyenv_root"/versions/3.1[2-9]*/bin/python; do
    if [ -x "$path" ]; then candidates+=("$path"); fi
done

for c in "${candidates[@]+"${candidates[@]}"}"; do
    if ok "$c"; then
        # Print an absolute path so the venv does not depend on PATH later.
        if [[ "$c" != /* ]]; then c=$(command -v "$c"); fi
        echo "$c"
        exit 0
    fi
done

echo "find-python.sh: no Python 3.12 or newer found." >&2
echo "Glasshouse supports Python 3.12 and 3.13. Install one (e.g. 'pyenv install 3.12')," >&2
echo "or point PYTHON at it: PYTHON=/path/to/python3.12 make setup" >&2
exit 1
