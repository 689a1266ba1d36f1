// A lazy database's reader (lazy-database.mjs) against a stand-in server that answers ranges, and the
// runtime core's choice (core.mjs): blocks where the browser has JSPI and the server answers ranges,
// else the whole database, checked, downloaded at boot. Node 20 has no JSPI (`WebAssembly.Suspending`).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { createRuntimeCore } from "../../builder/runtime/reader/js/core.mjs";
import { RangeUnsupported, canSuspend, createLazyReader, sriToHex } from "../../builder/runtime/reader/js/lazy-database.mjs";
import { IntegrityError } from "../../builder/runtime/reader/js/store.mjs";

const BLOCK = 16;
const FILE = Uint8Array.from({ length: 40 }, (_, i) => i); // blocks of 16, 16 and 8 bytes
const sha256 = (bytes) => createHash("sha256").update(bytes).digest();
const hashesOf = (bytes) => {
  const out = [];
  for (let start = 0; start < bytes.byteLength; start += BLOCK) out.push(...sha256(bytes.subarray(start, start + BLOCK)));
  return Uint8Array.from(out);
};
const database = {
  url: "/_build/b/data/d.db", path: "/data/d.db", size: FILE.byteLength,
  integrity: `sha256-${sha256(FILE).toString("base64")}`,
  lazy: { blockBytes: BLOCK, blocks: 3, hashesURL: "/_build/b/data/d.blocks.sha256" },
};

/** A server of `bytes` that answers `Range: bytes=a-b` with 206 (or 200 and the whole file if `ranges` is false); `asked` lists the ranges. */
function rangeServer(bytes, { ranges = true } = {}) {
  const asked = [];
  const fetch = async (_url, init = {}) => {
    const range = init.headers && init.headers.Range;
    asked.push(range || "whole");
    if (!range || !ranges) return new Response(bytes, { status: 200 });
    const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(range);
    return new Response(bytes.slice(Number(first), Number(last) + 1), { status: 206 });
  };
  return { fetch, asked };
}

/** A Cache Storage cache in memory: `match` and `put` by URL. */
function memoryCache() {
  const entries = new Map();
  return {
    entries,
    match: async (url) => entries.get(url) && new Response(entries.get(url)),
    put: async (url, response) => void entries.set(url, new Uint8Array(await response.arrayBuffer())),
  };
}

test("reads across blocks fetch each block once, with a range, and the file's end reads short", async () => {
  const server = rangeServer(FILE);
  const reader = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: server.fetch });
  assert.deepEqual([...(await reader.read(10, 10))], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  assert.deepEqual([...(await reader.read(12, 4))], [12, 13, 14, 15]);
  assert.deepEqual([...(await reader.read(36, 10))], [36, 37, 38, 39]);
  assert.deepEqual(server.asked, ["bytes=0-15", "bytes=16-31", "bytes=32-39"]);
  assert.deepEqual(reader.stats, { requests: 3, bytes: 40, cacheHits: 0 });
});

test("concurrent reads of one block share its fetch", async () => {
  const server = rangeServer(FILE);
  const reader = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: server.fetch });
  await Promise.all([reader.read(0, 4), reader.read(4, 4), reader.block(0)]);
  assert.deepEqual(server.asked, ["bytes=0-15"]);
});

test("checked blocks go to Cache Storage, and a new reader (a restarted worker) takes them from there", async () => {
  const cache = memoryCache();
  const server = rangeServer(FILE);
  await createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: server.fetch, cache }).read(0, 20);
  assert.deepEqual([...cache.entries.keys()], ["/_build/b/data/d.db.blocks/0", "/_build/b/data/d.db.blocks/1"]);
  const again = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: server.fetch, cache });
  assert.deepEqual([...(await again.read(14, 4))], [14, 15, 16, 17]);
  assert.deepEqual(again.stats, { requests: 0, bytes: 0, cacheHits: 2 });
  assert.equal(server.asked.length, 2);
});

test("a block whose bytes are not the build's fails its check, from the network or from the cache", async () => {
  const tampered = FILE.slice();
  tampered[20] = 99;
  const reader = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: rangeServer(tampered).fetch });
  assert.deepEqual([...(await reader.read(0, 4))], [0, 1, 2, 3]);
  await assert.rejects(reader.read(16, 8), IntegrityError);
  const cache = memoryCache();
  cache.entries.set("/_build/b/data/d.db.blocks/2", new Uint8Array(8));
  const cached = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: rangeServer(FILE).fetch, cache });
  await assert.rejects(cached.block(2), IntegrityError);
});

test("a server that answers a range with the whole file is refused; a hash list of the wrong length too", async () => {
  const reader = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: rangeServer(FILE, { ranges: false }).fetch });
  await assert.rejects(reader.block(0), RangeUnsupported);
  await assert.rejects(reader.block(3), RangeError);
  assert.throws(() => createLazyReader({ database, hashes: new Uint8Array(64), fetchFn: rangeServer(FILE).fetch }), IntegrityError);
});

test("an SRI string's digest in hex, as Datasette's hash", () => {
  assert.equal(sriToHex(database.integrity), sha256(FILE).toString("hex"));
});

// --- The runtime core's choice -------------------------------------------------------------

const ORIGIN = "http://g.localhost";

/** The core of a lazy build with a stand-in Pyodide; `files` are what the stand-in network serves. */
function lazyCore(net) {
  const hashes = hashesOf(FILE);
  const config = {
    buildId: "b",
    precache: [{ url: database.lazy.hashesURL, size: hashes.byteLength, integrity: "" }],
    totalBytes: hashes.byteLength,
    database,
    runtimeURL: "/_runtime/", stdLibURL: "/_runtime/python_stdlib.zip", lockFileURL: "/_build/b/pyodide-lock.json",
    wheelsURL: "/_wheels/", packages: ["datasette"], bytecodeURL: "/_build/b/bytecode.zip",
    runtimeModuleURL: "/_build/b/glasshouse_runtime.py", pluginModules: [], settings: {}, metadata: {}, securityHeaders: [],
  };
  const started = [];
  const fetch = async (input, init = {}) => {
    const path = new URL(String(input), ORIGIN).pathname;
    net.asked.push(`${path} ${(init.headers && init.headers.Range) || "whole"}`);
    if (path === database.lazy.hashesURL) return new Response(hashes);
    if (path === database.url) {
      const response = net.database(init);
      if (!init.integrity) return response;
      // As a browser does: bytes that do not match `integrity` reject the fetch with a bare TypeError.
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (`sha256-${sha256(bytes).toString("base64")}` !== init.integrity) throw new TypeError("Failed to fetch");
      return new Response(bytes, { status: response.status });
    }
    return new Response("x");
  };
  const scope = { fetch, location: { href: `${ORIGIN}/`, origin: ORIGIN }, caches: undefined };
  const written = {};
  const loadPyodide = async () => ({
    _module: {},
    FS: { mkdirTree() {}, writeFile: (path, bytes) => (written[path] = bytes) },
    toPy: (value) => value,
    runPython: () => "/site-packages",
    unpackArchive() {},
    async loadPackage() {},
    pyimport: () => ({ start: async (options) => started.push({ ...options, bytes: written["/data/d.db"] }) }),
  });
  const core = createRuntimeCore({ config, loadPyodide, createPyodideModule: null, scope, snapshotMode: "worker" });
  return { core, started };
}

test("without JSPI a lazy build downloads the whole database, checked, and makes no snapshot", async () => {
  assert.equal(canSuspend(), false, "this test needs a runtime without WebAssembly.Suspending");
  const net = { asked: [], database: () => new Response(FILE) };
  const { core, started } = lazyCore(net);
  await core.boot();
  assert.deepEqual([...started[0].bytes], [...FILE]);
  assert.equal(started[0].lazy, null);
  assert.deepEqual(net.asked.filter((line) => line.startsWith(database.url)), [`${database.url} whole`]);
  assert.equal(core.status().database, "whole");
  assert.equal(core.status().snapshot, "off");
});

test("without JSPI a whole database that is not the build's stops the boot with an integrity error", async () => {
  const tampered = FILE.slice();
  tampered[0] = 99;
  const { core, started } = lazyCore({ asked: [], database: () => new Response(tampered) });
  await assert.rejects(core.boot(), IntegrityError);
  assert.equal(started.length, 0);
});

test("with JSPI but a server that answers no range, a lazy build downloads the whole database instead", async () => {
  const saved = [WebAssembly.Suspending, WebAssembly.promising];
  WebAssembly.Suspending = function Suspending() {};
  WebAssembly.promising = () => {};
  try {
    const net = { asked: [], database: () => new Response(FILE, { status: 200 }) };
    const { core, started } = lazyCore(net);
    await core.boot();
    assert.deepEqual(net.asked.filter((line) => line.startsWith(database.url)), [`${database.url} bytes=0-15`, `${database.url} whole`]);
    assert.deepEqual([...started[0].bytes], [...FILE]);
    assert.equal(core.status().database, "whole");
  } finally {
    [WebAssembly.Suspending, WebAssembly.promising] = saved;
  }
});

test("a read of blocks in memory is answered at once; one that needs the network is not", async () => {
  const server = rangeServer(FILE);
  const reader = createLazyReader({ database, hashes: hashesOf(FILE), fetchFn: server.fetch, memoryBlocks: 2 });
  assert.equal(reader.readNow(0, 4), null);
  await reader.read(0, 20); // blocks 0 and 1
  assert.deepEqual([...reader.readNow(14, 4)], [14, 15, 16, 17]);
  await reader.read(32, 4); // block 2: block 0, the least recently used, leaves memory
  assert.equal(reader.readNow(0, 4), null);
  assert.deepEqual([...reader.readNow(16, 4)], [16, 17, 18, 19]);
  assert.equal(server.asked.length, 3);
});
