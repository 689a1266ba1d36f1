// A lazy database (builder/lazy_database.py): SQLite reads the blocks of the database file it needs
// with HTTP range requests, each checked against the sha256 the build published for it, and kept
// in this build's Cache Storage so a block is fetched once per browser. Needs JSPI: SQLite's reads
// are synchronous, and only a WebAssembly.Suspending import lets one wait for a fetch.
import { IntegrityError } from "./store.mjs";

/** The name under which glasshouse_runtime.py registers the lazy database's SQLite VFS. */
export const LAZY_VFS = "glasshouse-lazy";
/** SQLite's result codes that xRead returns. */
export const SQLITE_OK = 0;
export const SQLITE_IOERR = 10;
export const SQLITE_IOERR_SHORT_READ = 522;
/** Blocks kept in this worker's memory (most recently used), on top of Cache Storage: 32 MB of 64 KiB blocks. */
export const MEMORY_BLOCKS = 512;

/** Whether this browser can suspend WebAssembly on a promise (JSPI), which a lazy database's reads need. */
export const canSuspend = () => typeof WebAssembly.Suspending === "function" && typeof WebAssembly.promising === "function";

/** The server answered a range request with the whole file (or another status): read the database whole instead. */
export class RangeUnsupported extends Error {
  constructor(url, status) {
    super(`${new URL(url, "http://x/").pathname} answered HTTP ${status} to a range request`);
    this.name = "RangeUnsupported";
  }
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The hex sha256 of an SRI string (`sha256-<base64>`). */
export const sriToHex = (integrity) => hex(Uint8Array.from(atob(integrity.slice("sha256-".length)), (c) => c.charCodeAt(0)));

/**
 * A reader of the lazy database `database` (config.database: `{url, size, lazy: {blockBytes, blocks}}`).
 * `hashes` is the build's block hash list (Uint8Array, 32 bytes per block); `fetchFn` fetches
 * from the network (ranged GETs); `cache` is a Cache Storage cache for verified blocks, or null
 * (no storage: memory only). Returns `{block(index), read(offset, length), readNow(offset, length), stats}`:
 * `block` resolves to the block's bytes (Uint8Array) once checked, or throws `IntegrityError`
 * (bytes that are not the build's), `RangeUnsupported` (no 206 answer) or the network's error;
 * `read` resolves to `length` bytes from byte `offset` (fewer at the end of the file); `readNow`
 * returns them at once when every block they lie in is in memory, else `null`;
 * `stats` counts `{requests, bytes, cacheHits}` (network requests, bytes fetched, Cache Storage hits).
 */
export function createLazyReader({ database, hashes, fetchFn, cache = null, memoryBlocks = MEMORY_BLOCKS }) {
  const { url, size } = database;
  const { blockBytes, blocks } = database.lazy;
  if (hashes.byteLength !== blocks * 32) throw new IntegrityError(database.lazy.hashesURL);
  const memory = new Map(); // index -> Uint8Array, oldest first
  const pending = new Map(); // index -> promise of its bytes, while fetched
  const stats = { requests: 0, bytes: 0, cacheHits: 0 };
  const blockKey = (index) => `${new URL(url, "http://x/").pathname}.blocks/${index}`;

  async function verified(index, bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const expected = hashes.subarray(index * 32, index * 32 + 32);
    if (!digest.every((byte, i) => byte === expected[i])) throw new IntegrityError(url);
    return bytes;
  }

  async function load(index) {
    const start = index * blockBytes;
    const end = Math.min(size, start + blockBytes) - 1;
    const cached = cache && (await cache.match(blockKey(index)));
    if (cached) {
      stats.cacheHits += 1;
      return verified(index, new Uint8Array(await cached.arrayBuffer()));
    }
    const response = await fetchFn(url, { headers: { Range: `bytes=${start}-${end}` }, cache: "no-store" });
    if (response.status !== 206) {
      if (response.body) await response.body.cancel();
      throw new RangeUnsupported(url, response.status);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    stats.requests += 1;
    stats.bytes += bytes.byteLength;
    await verified(index, bytes);
    // A block that cannot be kept (quota) is fetched again when needed: not an error.
    if (cache) await cache.put(blockKey(index), new Response(bytes)).catch(() => {});
    return bytes;
  }

  /** Block `index` from memory (now the most recently used), or undefined. */
  function remembered(index) {
    const hit = memory.get(index);
    if (hit) {
      memory.delete(index); // most recently used goes last
      memory.set(index, hit);
    }
    return hit;
  }

  async function block(index) {
    if (!(index >= 0 && index < blocks)) throw new RangeError(`block ${index} is outside the database's ${blocks} blocks`);
    const hit = remembered(index);
    if (hit) return hit;
    if (!pending.has(index)) {
      pending.set(index, load(index).finally(() => pending.delete(index)));
    }
    const bytes = await pending.get(index);
    memory.set(index, bytes);
    while (memory.size > memoryBlocks) memory.delete(memory.keys().next().value);
    return bytes;
  }

  /** The bytes `read` would give, copied from blocks in memory, or `null` if one is not there. */
  function readNow(offset, length) {
    const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
    let done = 0;
    while (done < out.byteLength) {
      const position = offset + done;
      const bytes = remembered(Math.floor(position / blockBytes));
      if (!bytes) return null;
      const from = position % blockBytes;
      const piece = bytes.subarray(from, Math.min(bytes.byteLength, from + out.byteLength - done));
      out.set(piece, done);
      done += piece.byteLength;
    }
    return out;
  }

  async function read(offset, length) {
    const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
    let done = 0;
    while (done < out.byteLength) {
      const position = offset + done;
      const bytes = await block(Math.floor(position / blockBytes));
      const from = position % blockBytes;
      const piece = bytes.subarray(from, Math.min(bytes.byteLength, from + out.byteLength - done));
      out.set(piece, done);
      done += piece.byteLength;
    }
    return out;
  }

  return { block, read, readNow, stats };
}

/**
 * SQLite's xRead for the lazy VFS, as an entry of `module`'s function table (Pyodide's
 * `pyodide._module`): `(file: i32, buf: i32, amount: i32, offset: i64) -> i32`, which waits for
 * `reader.read` through a `WebAssembly.Suspending` import. A tiny wasm module forwards the call, so
 * only WebAssembly frames lie between Python's promising entry and the suspension (JSPI cannot
 * suspend through JavaScript frames). A read whose blocks are in memory returns at once, without
 * suspending (JSPI suspends only on a returned promise). Never throws into SQLite: a failed read
 * returns `SQLITE_IOERR` and `onError(error)` hears why. Returns the table index (a C function pointer).
 */
export function suspendingXRead(module, reader, onError = () => {}) {
  const copy = (bytes, buf, amount) => {
    const heap = module.HEAPU8; // looked up each time: the memory may have grown
    heap.set(bytes, buf);
    if (bytes.byteLength < amount) {
      heap.fill(0, buf + bytes.byteLength, buf + amount);
      return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
  };
  const fetched = async (buf, amount, offset) => {
    try {
      return copy(await reader.read(offset, amount), buf, amount);
    } catch (error) {
      onError(error);
      return SQLITE_IOERR;
    }
  };
  const read = (_file, buf, amount, offset) => {
    const now = reader.readNow(Number(offset), amount);
    return now ? copy(now, buf, amount) : fetched(buf, amount, Number(offset));
  };
  const instance = new WebAssembly.Instance(new WebAssembly.Module(FORWARDER), { env: { read: new WebAssembly.Suspending(read) } });
  return module.addFunction(instance.exports.xRead, "iiiij");
}

// A wasm module of one type `(i32 i32 i32 i64) -> i32`, one import `env.read` of that type, and
// one exported function `xRead` that calls the import with its four arguments.
const FORWARDER = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x09, 0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7e, 0x01, 0x7f, // type section: one func type
  0x02, 0x0c, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x04, 0x72, 0x65, 0x61, 0x64, 0x00, 0x00, // import "env" "read"
  0x03, 0x02, 0x01, 0x00, // function section: function 1 has type 0
  0x07, 0x09, 0x01, 0x05, 0x78, 0x52, 0x65, 0x61, 0x64, 0x00, 0x01, // export "xRead" = function 1
  0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0x20, 0x03, 0x10, 0x00, 0x0b, // body: call 0 with locals 0-3
]);
