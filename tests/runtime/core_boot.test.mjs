// The runtime core's boot (core.mjs `createRuntimeCore`) with a stand-in Pyodide and network: Python
// starts while the bundle still downloads, each file is downloaded once, and a failed download is the
// error the reader sees.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createRuntimeCore } from "../../builder/runtime/reader/js/core.mjs";

const ORIGIN = "http://g.localhost";
const FILES = {
  "/_runtime/pyodide.asm.wasm": "wasm",
  "/_wheels/datasette.whl": "wheel",
  "/_build/b/bytecode.zip": "pyc",
  "/_build/b/glasshouse_runtime.py": "runtime source",
  "/_build/b/data/d.db": "database",
};
const config = {
  buildId: "b",
  precache: Object.entries(FILES).map(([url, body]) => ({ url, size: body.length, integrity: "" })),
  totalBytes: Object.values(FILES).join("").length,
  database: { url: "/_build/b/data/d.db", path: "/data/d.db" },
  runtimeURL: "/_runtime/", stdLibURL: "/_runtime/python_stdlib.zip", lockFileURL: "/_build/b/pyodide-lock.json",
  wheelsURL: "/_wheels/", packages: ["datasette"], bytecodeURL: "/_build/b/bytecode.zip",
  runtimeModuleURL: "/_build/b/glasshouse_runtime.py", pluginModules: [], settings: {}, metadata: {}, securityHeaders: [],
};

/**
 * A network whose answer for paths ending in `held` waits for `release()`, and which answers HTTP 503
 * for paths ending in `failing`; `fetched` lists every path asked of it.
 */
function network({ held = ".db", failing = null } = {}) {
  let release;
  const holding = new Promise((resolve) => (release = resolve));
  const fetched = [];
  const fetch = async (input) => {
    const path = new URL(String(input), ORIGIN).pathname;
    fetched.push(path);
    if (path.endsWith(held)) await holding;
    if (failing && path.endsWith(failing)) return new Response("", { status: 503 });
    return new Response(FILES[path], { status: 200, headers: { "Content-Type": "application/octet-stream" } });
  };
  return { fetch, fetched, release };
}

/**
 * A stand-in Pyodide that fetches its wasm and wheel through the scope, as the real one does. Like the
 * real one, it never settles when its wasm cannot be fetched (it warns "wasm instantiation failed!").
 */
function fakePyodide(scope, events) {
  return async () => {
    events.push("Pyodide started");
    try {
      await (await scope.fetch(`${ORIGIN}/_runtime/pyodide.asm.wasm`)).text();
    } catch {
      events.push("wasm instantiation failed");
      await new Promise(() => {});
    }
    const written = {};
    return {
      FS: { mkdirTree() {}, writeFile: (path, bytes) => (written[path] = bytes) },
      toPy: (value) => value,
      runPython: () => "/site-packages",
      unpackArchive() {},
      async loadPackage() {
        await (await scope.fetch(`${ORIGIN}/_wheels/datasette.whl`)).text();
        events.push("packages loaded");
      },
      pyimport: () => ({
        async start() {
          events.push(`Datasette started on ${new TextDecoder().decode(written["/data/d.db"])}`);
        },
      }),
    };
  };
}

function core(net, events) {
  const scope = { fetch: net.fetch, location: { href: `${ORIGIN}/`, origin: ORIGIN }, caches: undefined };
  return createRuntimeCore({ config, loadPyodide: fakePyodide(scope, events), createPyodideModule: null, scope });
}

test("Python starts and installs its packages while the database is still downloading; nothing is fetched twice", async () => {
  const net = network();
  const events = [];
  const runtime = core(net, events);
  const booted = runtime.boot();
  // The database is held back: a boot that waits for the whole download never gets this far.
  for (let tries = 0; !events.includes("packages loaded"); tries++) {
    if (tries === 400) assert.fail(`Python did not start while the database downloaded (events: ${events.join(", ") || "none"})`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  events.push("database released");
  net.release();
  await booted;
  assert.deepEqual(events, ["Pyodide started", "packages loaded", "database released", "Datasette started on database"]);
  assert.deepEqual([...net.fetched].sort(), Object.keys(FILES).sort(), "each bundle file asked of the network once");
});

test("a download that fails stops the boot with the download's own error", async () => {
  const net = network({ failing: ".db" });
  const events = [];
  const runtime = core(net, events);
  const booted = runtime.boot();
  net.release();
  await assert.rejects(booted, /\/_build\/b\/data\/d\.db answered HTTP 503/);
  assert.ok(!events.some((event) => event.startsWith("Datasette started")), "Datasette never got a database");
});

test("a file that fails while Python waits for another still stops the boot with the failure's own error", async () => {
  // The wasm is still downloading when the wheel fails: the queue stops, so the wasm never arrives
  // and Pyodide hangs (as the real one does); the reader must still get the wheel's error.
  const net = network({ held: ".wasm", failing: ".whl" });
  const events = [];
  const runtime = core(net, events);
  const booted = runtime.boot();
  const failed = assert.rejects(booted, /\/_wheels\/datasette\.whl answered HTTP 503/);
  for (let tries = 0; !net.fetched.includes("/_wheels/datasette.whl"); tries++) {
    if (tries === 400) assert.fail("the wheel was never asked for");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await failed;
  net.release();
});
