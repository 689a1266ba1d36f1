"""Spike: a read-only SQLite VFS whose xRead fetches HTTP byte ranges (Pyodide + JSPI).

Registered through ctypes on the SQLite linked into Pyodide. Two ways to read:

- ``mode="run_sync"``: xRead is a ctypes callback that waits for the JavaScript
  ``fetch_range(url, start, length)`` (a Promise of a Uint8Array) with ``pyodide.ffi.run_sync``.
  In Chromium 156 this fails: "SuspendError: trying to suspend JS frames", since libffi's
  closure trampoline runs through JavaScript, and JSPI cannot suspend across JS frames.
- ``mode="suspending"``: xRead is ``js.xread_pointer``, a function-table entry of a tiny wasm
  module whose import is a ``WebAssembly.Suspending`` JavaScript function (worker.mjs): only
  wasm frames lie between ``runPythonAsync``'s promising entry and the suspension.

Reads in ``run_sync`` mode are served from a block cache of ``BLOCK`` bytes.
Not product code: see the bigdb report.
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int64, c_void_p

import js
from pyodide.ffi import run_sync

BLOCK = 64 * 1024
SQLITE_OK, SQLITE_IOERR_SHORT_READ, SQLITE_READONLY = 0, 522, 8
lib = ctypes.CDLL(None)


class File(Structure):
    _fields_ = [("pMethods", c_void_p), ("handle", c_int)]


xClose = CFUNCTYPE(c_int, POINTER(File))
xRead = CFUNCTYPE(c_int, POINTER(File), c_void_p, c_int, c_int64)
xWrite = CFUNCTYPE(c_int, POINTER(File), c_void_p, c_int, c_int64)
xTruncate = CFUNCTYPE(c_int, POINTER(File), c_int64)
xSync = CFUNCTYPE(c_int, POINTER(File), c_int)
xFileSize = CFUNCTYPE(c_int, POINTER(File), POINTER(c_int64))
xLock = CFUNCTYPE(c_int, POINTER(File), c_int)
xCheckReservedLock = CFUNCTYPE(c_int, POINTER(File), POINTER(c_int))
xFileControl = CFUNCTYPE(c_int, POINTER(File), c_int, c_void_p)
xSectorSize = CFUNCTYPE(c_int, POINTER(File))


class IoMethods(Structure):
    _fields_ = [
        ("iVersion", c_int), ("xClose", xClose), ("xRead", xRead), ("xWrite", xWrite), ("xTruncate", xTruncate),
        ("xSync", xSync), ("xFileSize", xFileSize), ("xLock", xLock), ("xUnlock", xLock),
        ("xCheckReservedLock", xCheckReservedLock), ("xFileControl", xFileControl), ("xSectorSize", xSectorSize),
        ("xDeviceCharacteristics", xSectorSize),
    ]  # fmt: skip


class Vfs(Structure):
    pass


xOpen = CFUNCTYPE(c_int, POINTER(Vfs), c_char_p, POINTER(File), c_int, POINTER(c_int))
xDelete = CFUNCTYPE(c_int, POINTER(Vfs), c_char_p, c_int)
xAccess = CFUNCTYPE(c_int, POINTER(Vfs), c_char_p, c_int, POINTER(c_int))
xFullPathname = CFUNCTYPE(c_int, POINTER(Vfs), c_char_p, c_int, c_void_p)
Vfs._fields_ = [
    ("iVersion", c_int), ("szOsFile", c_int), ("mxPathname", c_int), ("pNext", c_void_p), ("zName", c_char_p),
    ("pAppData", c_void_p), ("xOpen", xOpen), ("xDelete", xDelete), ("xAccess", xAccess),
    ("xFullPathname", xFullPathname), ("xDlOpen", c_void_p), ("xDlError", c_void_p), ("xDlSym", c_void_p),
    ("xDlClose", c_void_p), ("xRandomness", c_void_p), ("xSleep", c_void_p), ("xCurrentTime", c_void_p),
    ("xGetLastError", c_void_p),
]  # fmt: skip

stats = {"requests": 0, "bytes": 0, "reads": 0}
_files: dict[int, dict] = {}
_blocks: dict[tuple[int, int], bytes] = {}


def _block(handle: int, index: int) -> bytes:
    key = (handle, index)
    if key not in _blocks:
        url = _files[handle]["url"]
        data = run_sync(js.fetch_range(url, index * BLOCK, BLOCK)).to_bytes()
        stats["requests"] += 1
        stats["bytes"] += len(data)
        _blocks[key] = data
    return _blocks[key]


def _read(f, buf, amount, offset):
    handle = f.contents.handle
    stats["reads"] += 1
    out, pos = bytearray(), offset
    while len(out) < amount:
        data = _block(handle, pos // BLOCK)
        piece = data[pos % BLOCK : pos % BLOCK + amount - len(out)]
        if not piece:
            break
        out += piece
        pos += len(piece)
    ctypes.memmove(buf, bytes(out), len(out))
    if len(out) < amount:
        ctypes.memset(buf + len(out), 0, amount - len(out))
        return SQLITE_IOERR_SHORT_READ
    return SQLITE_OK


def _size(f, out):
    out[0] = _files[f.contents.handle]["size"]
    return SQLITE_OK


def _lock_state(f, out):
    out[0] = 0
    return SQLITE_OK


methods = IoMethods(
    1, xClose(lambda f: SQLITE_OK), xRead(_read), xWrite(lambda *a: SQLITE_READONLY), xTruncate(lambda *a: SQLITE_READONLY),
    xSync(lambda *a: SQLITE_OK), xFileSize(_size), xLock(lambda *a: SQLITE_OK), xLock(lambda *a: SQLITE_OK),
    xCheckReservedLock(_lock_state), xFileControl(lambda *a: 12), xSectorSize(lambda f: 4096), xSectorSize(lambda f: 0),
)  # fmt: skip  (12: SQLITE_NOTFOUND for every file control)


def _open(vfs, name, f, flags, out_flags):
    url = name.decode() if name else ""
    size = int(js.database_size(url))  # known before the connection: xOpen does not suspend
    handle = len(_files) + 1
    _files[handle] = {"url": url, "size": size}
    js.register_file(handle, url)
    f.contents.pMethods = ctypes.addressof(methods)
    f.contents.handle = handle
    if out_flags:
        out_flags[0] = 1  # SQLITE_OPEN_READONLY
    return SQLITE_OK


def _access(vfs, name, flags, out):
    out[0] = 0  # no journal, no WAL
    return SQLITE_OK


def _full_pathname(vfs, name, size, out):
    ctypes.memmove(out, name + b"\0", min(len(name) + 1, size))
    return SQLITE_OK


def register(name: str = "http", mode: str = "suspending") -> None:
    """Register the VFS as ``name`` (open with ``file:<url>?vfs=<name>&immutable=1``, ``uri=True``)."""
    if mode == "suspending":
        methods.xRead = xRead(int(js.xread_pointer))
    lib.sqlite3_vfs_find.restype = POINTER(Vfs)
    default = lib.sqlite3_vfs_find(None).contents
    vfs = Vfs()
    ctypes.pointer(vfs)[0] = default  # copy: keep its randomness, sleep and time
    vfs.iVersion, vfs.szOsFile, vfs.mxPathname, vfs.pNext = 1, ctypes.sizeof(File), 1024, None
    vfs.zName = name.encode()
    vfs.xOpen, vfs.xDelete, vfs.xAccess = xOpen(_open), xDelete(lambda *a: SQLITE_OK), xAccess(_access)
    vfs.xFullPathname = xFullPathname(_full_pathname)
    globals()["_keep"] = vfs  # SQLite keeps the pointer: the structure must outlive it
    rc = lib.sqlite3_vfs_register(ctypes.byref(vfs), 0)
    if rc != SQLITE_OK:
        raise OSError(f"sqlite3_vfs_register returned {rc}")
