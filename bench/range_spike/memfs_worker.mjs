// The product's database path without Datasette, for databases too big to build here in time:
// stream the file into Cache Storage (as store.mjs's downloadAll does), read it back once into a
// buffer of its size (readInto) that MEMFS owns (canOwn), open it with Python's sqlite3 and query.
// `?copy=1` takes the old path instead: the whole download held as chunks and a Blob before
// cache.put, then arrayBuffer() and a copying FS.writeFile.
import { loadPyodide } from "/pyodide/pyodide.mjs";
import { readInto } from "/runtime-js/store.mjs";

const params = new URL(self.location.href).searchParams;
const database = new URL(`/db/${params.get("db") || "big.db"}`, self.location.href).href;
const QUERIES = {
  indexed: "select * from observations where station = 'ST0042' order by id limit 101",
  fts: "select observations.* from observations join observations_fts on observations.id = observations_fts.rowid where observations_fts match 'thunder' limit 101",
};

async function main() {
  const results = { copy: params.has("copy"), steps: {} };
  let t = performance.now();
  const step = (name) => {
    results.steps[name] = Math.round(performance.now() - t);
    t = performance.now();
  };
  const cache = await caches.open("memfs-spike");
  const network = await fetch(database);
  const size = Number(network.headers.get("Content-Length"));
  if (results.copy) {
    // The old downloadAll: every chunk kept, then one Blob, then cache.put of a clone.
    const chunks = [];
    const reader = network.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    const response = new Response(new Blob(chunks));
    await cache.put(database, response.clone());
  } else {
    await cache.put(database, network);
  }
  step("download_into_cache_ms");
  const pyodide = await loadPyodide({ indexURL: "/pyodide/" });
  step("pyodide_ms");
  const stored = await cache.match(database);
  const bytes = results.copy ? new Uint8Array(await stored.arrayBuffer()) : await readInto(stored, size);
  step("read_from_cache_ms");
  pyodide.FS.mkdirTree("/data");
  pyodide.FS.writeFile("/data/big.db", bytes, { canOwn: !results.copy });
  step("write_to_memfs_ms");
  results.size = size;
  results.queries = {};
  pyodide.runPython(`import sqlite3; conn = sqlite3.connect("file:/data/big.db?immutable=1", uri=True)`);
  for (const [name, sql] of Object.entries(QUERIES)) {
    const t0 = performance.now();
    const rows = pyodide.runPython(`len(conn.execute(${JSON.stringify(sql)}).fetchall())`);
    results.queries[name] = { ms: Math.round(performance.now() - t0), rows };
  }
  results.wasmMemoryMB = pyodide._module.HEAP8.buffer.byteLength / 1e6;
  self.postMessage(results);
}

main().catch((error) => self.postMessage({ error: String(error && error.stack ? error.stack : error) }));
