"""Build pure-Python wheels from sdists whose C speedups are optional.

PyYAML and MarkupSafe ship C extensions, and PyPI has no pure wheel for either.
Pyodide's compiled builds of them live on its CDN, which a self-contained bundle
cannot use, so we package their pure-Python fallbacks (``yaml`` without
``_yaml``, ``markupsafe`` with ``_native``) as ``py3-none-any`` wheels.

The wheels are written deterministically (sorted entries, fixed timestamps), so
the same sdist always gives the same wheel bytes and the same sha256.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

#: Normalised project name -> package directory inside the sdist (relative to its root).
PURE_PYTHON_SDISTS: dict[str, str] = {
    "pyyaml": "lib/yaml",
    "markupsafe": "src/markupsafe",
}

#: Suffixes of sources that belong to the optional C speedups and are left out.
_SPEEDUP_SUFFIXES = (".c", ".h", ".pyx", ".pxd", ".so")

#: 1980-01-01, the earliest time a zip entry can carry; used for every entry.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class PureWheelError(Exception):
    """The sdist cannot be turned into a pure wheel (unknown project or odd layout)."""


def normalise(name: str) -> str:
    """Return the PEP 503 normalised form of a project name (``PyYAML`` -> ``pyyaml``)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def build_pure_wheel(sdist: Path, out_dir: Path) -> Path:
    """Write a ``py3-none-any`` wheel of the pure-Python part of ``sdist``.

    ``sdist`` is a ``.tar.gz`` source distribution of a project listed in
    ``PURE_PYTHON_SDISTS``. Returns the path of the wheel written in ``out_dir``
    (``<name>-<version>-py3-none-any.whl``). Raises ``PureWheelError`` if the
    project is not listed or its package directory is missing.
    """
    with tarfile.open(sdist, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        root = PurePosixPath(members[0].name).parts[0]
        pkg_info = tar.extractfile(f"{root}/PKG-INFO")
        if pkg_info is None:
            raise PureWheelError(f"{sdist.name} has no PKG-INFO")
        metadata_text = pkg_info.read().decode("utf-8")
        meta = email.parser.Parser().parsestr(metadata_text)
        name, version = meta["Name"], meta["Version"]
        key = normalise(name)
        if key not in PURE_PYTHON_SDISTS:
            raise PureWheelError(f"{name} is not a known pure-Python fallback")
        pkg_dir = f"{root}/{PURE_PYTHON_SDISTS[key]}/"
        package_name = PurePosixPath(pkg_dir).name
        files: dict[str, bytes] = {}
        for member in members:
            if member.name.startswith(pkg_dir) and not member.name.endswith(_SPEEDUP_SUFFIXES):
                rel = member.name[len(pkg_dir):]
                data = tar.extractfile(member)
                assert data is not None
                files[f"{package_name}/{rel}"] = data.read()
    if not files:
        raise PureWheelError(f"{sdist.name} has no files under {pkg_dir}")

    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    files[f"{info}/METADATA"] = metadata_text.encode("utf-8")
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: glasshouse-builder\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/top_level.txt"] = f"{package_name}\n".encode()
    record = io.StringIO()
    for path in sorted(files):
        digest = base64.urlsafe_b64encode(hashlib.sha256(files[path]).digest()).rstrip(b"=").decode()
        record.write(f"{path},sha256={digest},{len(files[path])}\n")
    record.write(f"{info}/RECORD,,\n")
    files[f"{info}/RECORD"] = record.getvalue().encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_path = out_dir / f"{dist}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            entry = zipfile.ZipInfo(path, date_time=_ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, files[path])
    wheel_path.write_bytes(buf.getvalue())
    return wheel_path
