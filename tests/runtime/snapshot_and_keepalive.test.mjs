// Unit tests of the snapshot's file pack and cache entries (snapshot.mjs) and of the page's
// keep-alive pings (keepalive.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { readyAction } from "../../builder/runtime/reader/js/fallback.mjs";
import { KEEPALIVE_MESSAGE, KEEPALIVE_MS, startKeepAlive, withKeepAlive } from "../../builder/runtime/reader/js/keepalive.mjs";
import { RELOADS_KEY, forgetReloads } from "../../builder/runtime/reader/js/reload-count.mjs";
import {
  SNAPSHOT_FORMAT, deleteSnapshot, growingModuleFactory, packFiles, readSnapshot, snapshotKeys, takeMemorySnapshot, unpackFiles,
  writeSnapshot,
} from "../../builder/runtime/reader/js/snapshot.mjs";

/** A stand-in for Emscripten's FS with the calls snapshot.mjs makes: a Map of path -> {dir} or {bytes, mtime}. */
function fakeFS(entries = {}) {
  const nodes = new Map(Object.entries(entries));
  const DIR = 0o040000;
  const FILE = 0o100000;
  return {
    nodes,
    analyzePath: (path) => ({ exists: nodes.has(path) }),
    lstat: (path) => {
      const node = nodes.get(path);
      return { mode: node.dir ? DIR : FILE, mtime: new Date(node.mtime || 0) };
    },
    isDir: (mode) => mode === DIR,
    isFile: (mode) => mode === FILE,
    readdir: (path) => [".", "..", ...[...nodes.keys()].filter((p) => p.startsWith(path + "/") && !p.slice(path.length + 1).includes("/")).map((p) => p.slice(path.length + 1))],
    readFile: (path) => nodes.get(path).bytes,
    mkdirTree: (path) => nodes.set(path, { dir: true }),
    writeFile: (path, bytes) => nodes.set(path, { bytes: new Uint8Array(bytes), mtime: Date.now() }),
    utime: (path, atime, mtime) => (nodes.get(path).mtime = mtime),
  };
}

const bytes = (text) => new TextEncoder().encode(text);

test("the file pack brings back every file with its bytes and modification time, and leaves out skipped paths", async () => {
  const source = fakeFS({
    "/lib/site-packages": { dir: true },
    "/lib/site-packages/datasette": { dir: true },
    "/lib/site-packages/datasette/app.py": { bytes: bytes("print('app')"), mtime: 1_600_000_000_000 },
    "/lib/site-packages/datasette/templates": { dir: true },
    "/lib/site-packages/datasette/templates/index.html": { bytes: bytes("<h1>{{ x }}</h1>"), mtime: 1_700_000_000_000 },
    "/home/pyodide": { dir: true },
    "/home/pyodide/glasshouse_runtime.py": { bytes: bytes("async def start(): ..."), mtime: 5 },
    "/home/pyodide/big.db": { bytes: bytes("SQLite format 3"), mtime: 6 },
  });
  const pack = packFiles(source, ["/lib/site-packages", "/home/pyodide/", "/not/there"], ["/home/pyodide/big.db"]);
  const target = fakeFS();
  assert.equal(unpackFiles(target, await pack.arrayBuffer()), 3);
  for (const path of ["/lib/site-packages/datasette/app.py", "/lib/site-packages/datasette/templates/index.html", "/home/pyodide/glasshouse_runtime.py"]) {
    assert.deepEqual(target.nodes.get(path).bytes, source.nodes.get(path).bytes, path);
    assert.equal(target.nodes.get(path).mtime, source.nodes.get(path).mtime, path);
  }
  assert.ok(target.nodes.get("/lib/site-packages/datasette/templates").dir);
  assert.ok(!target.nodes.has("/home/pyodide/big.db"));
});

test("a truncated file pack is refused", async () => {
  const source = fakeFS({ "/a": { dir: true }, "/a/b.py": { bytes: bytes("x = 1\n"), mtime: 1 } });
  const buffer = await packFiles(source, ["/a"]).arrayBuffer();
  assert.throws(() => unpackFiles(fakeFS(), buffer.slice(0, buffer.byteLength - 2)), /truncated at \/a\/b\.py/);
});

/** A stand-in for one Cache Storage cache (match/put/delete by URL). */
function fakeCache() {
  const entries = new Map();
  return {
    entries,
    match: async (url) => entries.get(String(url))?.clone(),
    put: async (url, response) => void entries.set(String(url), response),
    delete: async (url) => entries.delete(String(url)),
  };
}

const CONFIG = { buildId: "b1", runtimeURL: "/_runtime/pyodide-0.0.1/" };

test("a saved snapshot reads back as written, per build and mode, and is gone once deleted", async () => {
  const cache = fakeCache();
  const keys = snapshotKeys(CONFIG, "service-worker", "http://g.localhost:8000");
  assert.equal(keys.heap, `http://g.localhost:8000/_glasshouse_snapshot/b1/service-worker-v${SNAPSHOT_FORMAT}/heap`);
  assert.notEqual(snapshotKeys(CONFIG, "worker", "http://g.localhost:8000").heap, keys.heap);
  assert.equal(await readSnapshot(cache, keys, CONFIG), null, "no snapshot yet");
  const heap = new Uint8Array([1, 2, 3, 4, 5]);
  await writeSnapshot(cache, keys, CONFIG, heap, new Blob([bytes("files")]));
  const saved = await readSnapshot(cache, keys, CONFIG);
  assert.deepEqual(saved.heap, heap);
  assert.equal(new TextDecoder().decode(saved.files), "files");
  await deleteSnapshot(cache, keys);
  assert.equal(await readSnapshot(cache, keys, CONFIG), null);
});

test("a snapshot of another build or runtime, or one whose size does not match, is refused with the reason", async () => {
  const cache = fakeCache();
  const keys = snapshotKeys(CONFIG, "worker", "http://g.localhost");
  await writeSnapshot(cache, keys, CONFIG, new Uint8Array(8), new Blob([bytes("f")]));
  await assert.rejects(readSnapshot(cache, keys, { ...CONFIG, buildId: "b2" }), /another build, runtime or snapshot format/);
  await assert.rejects(readSnapshot(cache, keys, { ...CONFIG, runtimeURL: "/_runtime/pyodide-315.0.0/" }), /another build/);
  const meta = cache.entries.get(keys.heap).headers.get("x-glasshouse-snapshot");
  await cache.put(keys.heap, new Response(new Uint8Array(7), { headers: { "x-glasshouse-snapshot": meta } }));
  await assert.rejects(readSnapshot(cache, keys, CONFIG), /size does not match \(7 of 8 bytes of memory/);
  await cache.delete(keys.files);
  await assert.rejects(readSnapshot(cache, keys, CONFIG), /file pack is missing/);
});

test("the memory snapshot is taken with loadedPackages empty, and the names are put back even when it fails", () => {
  const loadedPackages = { datasette: "default channel", jinja2: "default channel" };
  let seen = null;
  const pyodide = { loadedPackages, makeMemorySnapshot: () => ((seen = { ...loadedPackages }), new Uint8Array(1)) };
  assert.deepEqual(takeMemorySnapshot(pyodide), new Uint8Array(1));
  assert.deepEqual(seen, {});
  assert.deepEqual(Object.keys(loadedPackages), ["datasette", "jinja2"]);
  pyodide.makeMemorySnapshot = () => {
    throw new Error("Can't serialize object at index 9");
  };
  assert.throws(() => takeMemorySnapshot(pyodide), /index 9/);
  assert.deepEqual(Object.keys(loadedPackages), ["datasette", "jinja2"]);
});

test("the module factory grows Python's memory to the snapshot's size, and says so when it cannot", async () => {
  const grown = [];
  const module = { HEAP8: new Int8Array(16), growMemory: (size) => (grown.push(size), true) };
  assert.equal(await growingModuleFactory(async () => module, 64)({}), module);
  assert.deepEqual(grown, [64]);
  await growingModuleFactory(async () => module, 8)({});
  assert.deepEqual(grown, [64], "no growth for a snapshot that fits");
  const stuck = { HEAP8: new Int8Array(16), growMemory: () => undefined };
  await assert.rejects(growingModuleFactory(async () => stuck, 3 * 1048576)({}), /could not grow Python's memory to 3 MB/);
});

test("pages get the keep-alive module as the first script of their head", () => {
  assert.equal(
    withKeepAlive("<!doctype html><html><head><title>t</title></head><body></body></html>", "/_build/b/js/keepalive.mjs"),
    '<!doctype html><html><head><script type="module" src="/_build/b/js/keepalive.mjs"></script><title>t</title></head><body></body></html>',
  );
  assert.ok(withKeepAlive("<p>x</p>", "/k.mjs").startsWith('<script type="module" src="/k.mjs"></script><p>'));
});

test("the page pings its Service Worker at once and every 20 s, and hands each answer on", () => {
  assert.ok(KEEPALIVE_MS <= 25_000, "well under the ~30 s after which browsers stop an idle Service Worker");
  const posted = [];
  const listeners = [];
  const container = {
    controller: { postMessage: (message) => posted.push(message) },
    addEventListener: (type, listener) => listeners.push([type, listener]),
  };
  let tick = null;
  const timers = { setInterval: (fn, ms) => ((tick = [fn, ms]), 7), clearInterval: (id) => assert.equal(id, 7) };
  const statuses = [];
  const stop = startKeepAlive({ container, onStatus: (s) => statuses.push(s), timers });
  assert.deepEqual(posted, [{ type: KEEPALIVE_MESSAGE }]);
  assert.equal(tick[1], KEEPALIVE_MS);
  tick[0]();
  tick[0]();
  assert.equal(posted.length, 3);
  const [[type, listener]] = listeners;
  assert.equal(type, "message");
  listener({ data: { type: "other" } });
  listener({ data: { type: KEEPALIVE_MESSAGE, boot: "snapshot", snapshot: "saved" } });
  assert.deepEqual(statuses, [{ type: KEEPALIVE_MESSAGE, boot: "snapshot", snapshot: "saved" }]);
  container.controller = null; // a page the Service Worker does not control (yet) sends nothing
  tick[0]();
  assert.equal(posted.length, 3);
  stop();
});

test("a page the Service Worker answered forgets the bootstrap page's reloads, so a later fallback reloads again", () => {
  const stored = new Map([[RELOADS_KEY, "3"]]);
  const sessionStorage = { removeItem: (key) => stored.delete(key) };
  assert.equal(readyAction(Number(stored.get(RELOADS_KEY))), "give-up"); // three handovers in this tab so far
  forgetReloads({ sessionStorage });
  assert.equal(stored.has(RELOADS_KEY), false);
  assert.equal(readyAction(Number(stored.get(RELOADS_KEY) || 0)), "reload");
  // A frame denied storage: reading sessionStorage throws there, and nothing is thrown here.
  const denied = Object.defineProperty({}, "sessionStorage", { get() { throw new DOMException("denied", "SecurityError"); } });
  assert.doesNotThrow(() => forgetReloads(denied));
});
