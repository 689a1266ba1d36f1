// Spike worker: Pyodide, the ctypes range VFS (range_vfs.py) and timed queries on /db/<name>.
import { loadPyodide } from "/pyodide/pyodide.mjs";

const params = new URL(self.location.href).searchParams;
const database = new URL(`/db/${params.get("db") || "big.db"}`, self.location.href).href;
const counts = { requests: 0, bytes: 0 };

// Called from Python's xRead through run_sync: one ranged GET.
self.fetch_range = async (url, start, length) => {
  const response = await fetch(url, { headers: { Range: `bytes=${start}-${start + length - 1}` } });
  if (response.status !== 206) throw new Error(`${url} answered ${response.status} to a Range request`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  counts.requests += 1;
  counts.bytes += bytes.byteLength;
  return bytes;
};
const sizes = new Map();
self.database_size = (url) => sizes.get(url);
const files = new Map(); // VFS file handle -> URL
self.register_file = (handle, url) => files.set(handle, url);

// Block cache for the suspending xRead: BLOCK-byte ranges, each fetched once.
const BLOCK = Number(params.get("block") || 64 * 1024);
const blocks = new Map();
async function block(url, index) {
  const key = `${url}#${index}`;
  if (!blocks.has(key)) blocks.set(key, await self.fetch_range(url, index * BLOCK, BLOCK));
  return blocks.get(key);
}

/**
 * A wasm function `(file: i32, buf: i32, amount: i32, offset: i64) -> i32` (SQLite's xRead) that
 * calls `read` through a WebAssembly.Suspending import, put in Pyodide's function table. Returns
 * its table index. The module is hand-assembled: one type, one import, one function, one export.
 */
function suspendingXRead(pyodide, read) {
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x09, 0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7e, 0x01, 0x7f, // type 0: (i32 i32 i32 i64) -> i32
    0x02, 0x0c, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x04, 0x72, 0x65, 0x61, 0x64, 0x00, 0x00, // import env.read
    0x03, 0x02, 0x01, 0x00, // function 1: type 0
    0x07, 0x09, 0x01, 0x05, 0x78, 0x52, 0x65, 0x61, 0x64, 0x00, 0x01, // export "xRead"
    0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0x20, 0x03, 0x10, 0x00, 0x0b, // code
  ]);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { read: new WebAssembly.Suspending(read) } });
  return pyodide._module.addFunction(instance.exports.xRead, "iiiij");
}

async function xRead(pyodide, file, buf, amount, offset) {
  const url = files.get(pyodide._module.HEAP32[(file >> 2) + 1]); // File.handle, after pMethods
  const start = Number(offset);
  let done = 0;
  while (done < amount) {
    const data = await block(url, Math.floor((start + done) / BLOCK));
    const from = (start + done) % BLOCK;
    const piece = data.subarray(from, Math.min(data.byteLength, from + amount - done));
    if (!piece.byteLength) break;
    pyodide._module.HEAPU8.set(piece, buf + done); // after the await: the heap may have grown
    done += piece.byteLength;
  }
  if (done < amount) {
    pyodide._module.HEAPU8.fill(0, buf + done, buf + amount);
    return 522; // SQLITE_IOERR_SHORT_READ
  }
  return 0;
}

const QUERIES = {
  open: "select count(*) from sqlite_master",
  by_rowid: "select * from observations where id = 1234567",
  indexed: "select * from observations where station = 'ST0042' order by id limit 101",
  indexed_count: "select count(*) from observations where station = 'ST0042'",
  fts: "select observations.* from observations join observations_fts on observations.id = observations_fts.rowid where observations_fts match 'thunder' limit 101",
  fts_count: "select count(*) from observations_fts where observations_fts match 'thunder'",
};

async function main() {
  const started = performance.now();
  const pyodide = await loadPyodide({ indexURL: "/pyodide/" });
  const bootMs = performance.now() - started;
  const source = await (await fetch("./range_vfs.py")).text();
  pyodide.FS.writeFile("/home/pyodide/range_vfs.py", source);
  const mode = params.get("mode") || "suspending";
  const results = { bootMs, mode, block: BLOCK, jspi: typeof WebAssembly.Suspending === "function", queries: {} };
  sizes.set(database, Number((await fetch(database, { method: "HEAD" })).headers.get("Content-Length")));
  self.xread_pointer = suspendingXRead(pyodide, (...args) => xRead(pyodide, ...args));
  await pyodide.runPythonAsync(`import range_vfs, sqlite3; range_vfs.register("http", ${JSON.stringify(mode)})`);
  for (const [name, sql] of Object.entries(QUERIES)) {
    const before = { ...counts };
    const t0 = performance.now();
    const value = await pyodide.runPythonAsync(`
import sqlite3
conn = globals().get("conn") or sqlite3.connect(${JSON.stringify(`file:${database}?vfs=http&immutable=1`)}, uri=True)
rows = conn.execute(${JSON.stringify(sql)}).fetchall()
str(rows[0])[:120] + f" ({len(rows)} rows)"
`);
    results.queries[name] = {
      ms: Math.round(performance.now() - t0), requests: counts.requests - before.requests, bytes: counts.bytes - before.bytes, value,
    };
  }
  results.totalBytes = counts.bytes;
  results.totalRequests = counts.requests;
  results.wasmMemoryMB = pyodide._module.HEAP8.buffer.byteLength / 1e6;
  self.postMessage(results);
}

main().catch((error) => self.postMessage({ error: String(error && error.stack ? error.stack : error) }));
