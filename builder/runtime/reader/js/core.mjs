// The runtime core, the same in the Service Worker and in worker mode's dedicated Worker:
// download the bundle with progress, boot Pyodide and Datasette, answer one request.
// The build's Node check (compat_check.mjs) uses `startDatasette` and `callDatasette` too.
import { embedHTML } from "./embed.mjs";
import { canSuspend, createLazyReader, sriToHex, suspendingXRead } from "./lazy-database.mjs";
import { requestKind } from "./request-kind.mjs";
import { withSecurityHeaders } from "./security-headers.mjs";
import {
  deleteSnapshot, growingModuleFactory, packFiles, readSnapshot, snapshotKeys, takeMemorySnapshot, unpackFiles, writeSnapshot,
} from "./snapshot.mjs";
import { downloadAll, hasAll, openStore, readInto, verifiedResponse, waitForFile } from "./store.mjs";
import { datasetteTarget, redirectTarget } from "./url-rewrite.mjs";

/** Where the Python half of the runtime (glasshouse_runtime.py) is written in Pyodide's file system. */
export const RUNTIME_MODULE_PATH = "/home/pyodide/glasshouse_runtime.py";
/** Where Glasshouse's built-in Datasette plugins (`<name>.py`, e.g. glasshouse_report.py) are written. */
export const PLUGIN_DIR = "/home/pyodide/";
/**
 * How long the runtime must have answered nothing before it makes its snapshot, in ms: long enough
 * that a reader's next click rarely waits for it (Python renders a few pages and copies its memory
 * then, about a second), well under the ~30 s after which a browser stops an idle Service Worker.
 */
export const SNAPSHOT_IDLE_MS = 3000;

const message = (error) => String(error && error.message ? error.message : error);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Write the database file (`bytes`: Uint8Array) at `path` in `pyodide`'s file system, creating its
 * folder. The file system takes `bytes` over as the file's contents, not copied (a database may be
 * hundreds of MB): the caller must not change or reuse it.
 */
export function writeDatabase(pyodide, path, bytes) {
  pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")) || "/");
  pyodide.FS.writeFile(path, bytes, { canOwn: true });
}

/**
 * Write the database, glasshouse_runtime.py and the built-in plugins into `pyodide`'s file
 * system, import the runtime and start Datasette with those plugins registered. `options`:
 * `{databasePath, databaseBytes: Uint8Array, runtimeSource: string, pluginSources: {name: source},
 * settings, metadata, lazy, inspect}` (`name` a Python module name). The file system takes `databaseBytes` over
 * as the file's contents, not copied (a database may be hundreds of MB): the caller must not
 * change or reuse it. With `lazy` (`{read_pointer, size}`, see glasshouse_runtime.py's
 * `start`), Datasette reads the database through the lazy VFS and `databaseBytes` is empty; with
 * `inspect` (`{size, sha256, table_counts}`), Datasette counts no table itself.
 * Returns the Python module (a PyProxy with `handle`); Python errors throw.
 */
export async function startDatasette(
  pyodide, { databasePath, databaseBytes, runtimeSource, pluginSources = {}, settings, metadata, lazy = null, inspect = null },
) {
  writeDatabase(pyodide, databasePath, databaseBytes);
  pyodide.FS.writeFile(RUNTIME_MODULE_PATH, runtimeSource);
  for (const [name, source] of Object.entries(pluginSources)) pyodide.FS.writeFile(`${PLUGIN_DIR}${name}.py`, source);
  const runtime = pyodide.pyimport("glasshouse_runtime");
  await runtime.start(pyodide.toPy({ database_path: databasePath, settings, metadata, plugins: Object.keys(pluginSources), lazy, inspect }));
  return runtime;
}

/** The database's size in bytes, as the build recorded it (`config.database.size`; in `config.precache` for builds before lazy databases). */
const databaseSize = (config) => config.database.size ?? config.precache.find((file) => file.url === config.database.url).size;

/**
 * What the build recorded of the database for Datasette's inspect data (`{size, sha256,
 * table_counts}`), or `null` for builds made before it (their Datasette counts the tables itself).
 */
const inspectData = (config) =>
  config.database.tableCounts && config.database.integrity
    ? { size: databaseSize(config), sha256: sriToHex(config.database.integrity), table_counts: config.database.tableCounts }
    : null;

/** The sources of the build's built-in plugins (`modules`: `[{name, url}]`), fetched with `fetchFn`: `{name: source}`. */
async function fetchPluginSources(modules, fetchFn) {
  const sources = {};
  for (const { name, url } of modules) sources[name] = await (await fetchFn(url)).text();
  return sources;
}

/**
 * Answer `request` (`{method, url, headers: [[name, value]], body: Uint8Array | null}`, `url`
 * absolute) through Datasette. `_glasshouse_*` parameters are stripped, an embed URL is answered
 * with its view's page in embed mode (`clientURL`: the embed client module), redirects stay in embed
 * mode. Returns `{status, headers: [[name, value]], body: Uint8Array}` with `securityHeaders` (the
 * build's, `withSecurityHeaders`; none in the build's Node check, which serves no browser).
 */
export async function callDatasette(runtime, request, { clientURL, securityHeaders = [] }) {
  const target = datasetteTarget(request.url);
  const url = new URL(request.url);
  const result = await runtime.handle(
    request.method, target.path, target.query, request.headers, request.body || undefined, url.host, url.protocol.slice(0, -1),
  );
  let headers = Array.from(result.headers, ([name, value]) => [name, value]);
  let body = result.body;
  const location = headers.find(([name]) => name.toLowerCase() === "location");
  if (location) location[1] = redirectTarget(location[1], request.url);
  const type = (headers.find(([name]) => name.toLowerCase() === "content-type") || [, ""])[1];
  if (target.embed && type.startsWith("text/html")) {
    const html = embedHTML(new TextDecoder().decode(body), { fullView: target.fullView, chrome: target.chrome, clientURL });
    body = new TextEncoder().encode(html);
    headers = headers.filter(([name]) => name.toLowerCase() !== "content-length");
  }
  return { status: result.status, headers: withSecurityHeaders(headers, securityHeaders), body };
}

/**
 * A self-contained HTML error answer (same shape as `callDatasette`'s, with `securityHeaders`) saying
 * what to do; `heading` and `status` (default: the gallery could not start, 500) say what failed.
 */
export function errorAnswer(problem, securityHeaders, { heading = "This gallery could not start in your browser", status = 500 } = {}) {
  const escape = (text) => String(text).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html><meta charset="utf-8"><title>${escape(heading)}</title>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em">
<h1>${escape(heading)}</h1><p>${escape(problem)}</p>
<p>Reload the page to try again. If it keeps failing, open the gallery in a new tab in a current
version of Chrome, Edge, Firefox or Safari, or tell the publisher.</p></body>`;
  return {
    status,
    headers: withSecurityHeaders([["Content-Type", "text/html; charset=utf-8"]], securityHeaders),
    body: new TextEncoder().encode(html),
  };
}

/**
 * The runtime of one build in one global scope (`scope`: the Service Worker's or the Worker's
 * `self`). `config` is the build's config.mjs; `report(update, force)` receives progress
 * (`{phase, loaded, total}`). Wraps `scope.fetch` so Pyodide's own downloads (wasm, stdlib,
 * wheels) come from the store. With `snapshotMode` ("service-worker" or "worker"), a boot first
 * tries this build's memory snapshot (snapshot.mjs) and a normal boot leaves one behind once
 * `settle()` finds the runtime idle. Returns `{download, boot, handle, settle, status, store, networkFetch}`:
 * `handle(request)` boots on first use and answers like `callDatasette`, or with `errorAnswer`;
 * `settle()` resolves when a due snapshot is made (keep the worker alive for it); `status()` is
 * `{boot: "snapshot" | "fresh" | null, bootMs, snapshot: "none" | "due" | "saved" | "off",
 * database: "lazy" | "whole" | null, blocks: {requests, bytes, cacheHits} | null}` (`blocks`: a lazy
 * database's reads so far, lazy-database.mjs). A lazy database (`config.database.lazy`) is read in
 * blocks where the browser has JSPI and the server answers range requests, else downloaded whole
 * at boot; such a build makes no snapshot (the VFS's read function lives outside Python's memory).
 */
export function createRuntimeCore({ config, loadPyodide, createPyodideModule, scope = globalThis, report = () => {}, snapshotMode = null }) {
  if (config.database.lazy) snapshotMode = null;
  const networkFetch = scope.fetch.bind(scope);
  let storePromise = null;
  const store = () => (storePromise ||= openStore(`glasshouse-${config.buildId}`, scope.caches));
  // URL path -> promise of the end of its download, while `download()` runs (store.mjs `downloadAll`).
  const downloadsInFlight = new Map();
  scope.fetch = async (input, init) => {
    // Pyodide passes strings, URL objects or Requests.
    const url = new URL(input instanceof Request ? input.url : String(input), scope.location.href);
    if (requestKind(url, scope.location.origin) === "store") {
      // Python starts while the bundle downloads: a file still on its way is waited for, not fetched twice.
      await waitForFile(downloadsInFlight, url.href);
      const hit = await (await store()).match(url.href);
      // Pyodide asks for each wheel with its lock's sha256 as `integrity`: checked here too, since
      // a stored copy never meets the browser's own check.
      const integrity = (init && init.integrity) || (input instanceof Request && input.integrity);
      if (hit) return integrity ? verifiedResponse(hit, integrity, url.href) : hit;
    }
    return networkFetch(input, init);
  };
  const state = { boot: null, bootMs: null, snapshot: snapshotMode ? "none" : "off", database: null };
  let lazyReader = null; // the lazy database's reader, once Datasette reads it in blocks
  let lazyFailures = 0; // block reads that failed, and the last one's error, for the reader's error page
  let lazyFailure = null;
  const keys = snapshotMode && snapshotKeys(config, snapshotMode, scope.location.origin);
  // Snapshots live in Cache Storage only: one kept in memory would not outlive the worker.
  const snapshotCache = async () => (keys && (await store()).kind === "cache" ? scope.caches.open(`glasshouse-${config.buildId}`) : null);

  let downloading = null;
  /** Download the bundle into the store; calls while one runs share it (boot may start during the install's). */
  function download() {
    downloading ||= (async () => {
      report({ phase: "Downloading the runtime and the database", loaded: 0, total: config.totalBytes }, true);
      const onProgress = (loaded) => report({ loaded });
      await downloadAll(await store(), config.precache, {
        fetchFn: networkFetch, onProgress, securityHeaders: config.securityHeaders, inflight: downloadsInFlight,
      });
      report({ loaded: config.totalBytes }, true);
    })().finally(() => {
      downloading = null;
    });
    return downloading;
  }

  const pyodideOptions = (extra) => ({
    indexURL: config.runtimeURL,
    // The standard library the build compiled in the same Pyodide (builder/stdlib.py): imports skip
    // compiling. Builds made before it have none: Pyodide then takes python_stdlib.zip from indexURL.
    stdLibURL: config.stdLibURL,
    createPyodideModule,
    lockFileURL: config.lockFileURL,
    packageBaseUrl: new URL(config.wheelsURL, scope.location.origin).href,
    ...extra,
  });
  // Read once into a buffer of the recorded size, which MEMFS then owns: one copy in memory.
  const databaseBytes = async () => readInto(await scope.fetch(config.database.url), databaseSize(config));

  function booted(source, started) {
    Object.assign(state, { boot: source, bootMs: Math.round(performance.now() - started) });
  }

  /** The lazy database's block hash list (a precached file, checked against its integrity). */
  async function blockHashes() {
    const { hashesURL } = config.database.lazy;
    const entry = config.precache.find((file) => file.url === hashesURL);
    return new Uint8Array(await (await scope.fetch(hashesURL, entry && { integrity: entry.integrity })).arrayBuffer());
  }

  /**
   * The database for `startDatasette`: `{databaseBytes, lazy}`. A lazy database is read in blocks
   * when this browser has JSPI and its first block arrives as a range (`lazy`: what Python's VFS
   * needs); otherwise, or for a database read whole, its bytes (downloaded now for a lazy build).
   * Bytes that are not the build's throw `IntegrityError`.
   */
  async function openDatabase(pyodide) {
    const { database } = config;
    if (database.lazy && canSuspend()) {
      try {
        const cache = (await store()).kind === "cache" ? await scope.caches.open(`glasshouse-${config.buildId}`) : null;
        const reader = createLazyReader({ database, hashes: await blockHashes(), fetchFn: networkFetch, cache });
        await reader.block(0); // the header, and proof that the server answers ranges
        const readPointer = suspendingXRead(pyodide._module, reader, (error) => {
          lazyFailures += 1;
          lazyFailure = error;
          console.warn(`Glasshouse: a block of the database could not be read: ${message(error)}`);
        });
        lazyReader = reader;
        state.database = "lazy";
        console.info(`Glasshouse: reading the database (${database.size} bytes) in blocks as pages need them.`);
        const lazy = { read_pointer: readPointer, size: database.size };
        return { databaseBytes: new Uint8Array(0), lazy };
      } catch (error) {
        if (error.name === "IntegrityError") throw error;
        console.info(`Glasshouse: downloading the whole database instead of reading it in blocks (${message(error)}).`);
      }
    }
    if (database.lazy) {
      report({ phase: "Downloading the database", loaded: 0, total: database.size }, true);
      const entry = { url: database.url, size: database.size, integrity: database.integrity };
      await downloadAll(await store(), [entry], {
        fetchFn: networkFetch, onProgress: (loaded) => report({ loaded }), securityHeaders: config.securityHeaders,
      });
    }
    state.database = "whole";
    return { databaseBytes: await databaseBytes(), lazy: null };
  }

  /** Python and Datasette from this build's snapshot, or `null` (none, or it failed: then it is deleted). */
  async function restore(started) {
    const cache = await snapshotCache();
    if (!cache) return null;
    try {
      const saved = await readSnapshot(cache, keys, config);
      if (!saved) return null;
      report({ phase: "Restoring Python" }, true);
      // `worker` is the time from the worker's start to the boot (its modules), `read` the precache check and reading.
      const steps = [`worker ${Math.round(started)}`, `read ${Math.round(performance.now() - started)}`];
      const step = (name, since) => steps.push(`${name} ${Math.round(performance.now() - since)}`);
      let since = performance.now();
      const pyodide = await loadPyodide(
        pyodideOptions({ _loadSnapshot: saved.heap, createPyodideModule: growingModuleFactory(createPyodideModule, saved.heap.byteLength) }),
      );
      step("Pyodide", since);
      // Pyodide keeps its options: let the snapshot's copy of the memory go.
      if (pyodide._api && pyodide._api.config) pyodide._api.config._loadSnapshot = undefined;
      since = performance.now();
      const files = unpackFiles(pyodide.FS, saved.files);
      writeDatabase(pyodide, config.database.path, await databaseBytes());
      state.database = "whole";
      step("files", since);
      since = performance.now();
      const runtime = pyodide.pyimport("glasshouse_runtime");
      runtime.resume();
      step("resume", since);
      booted("snapshot", started);
      state.snapshot = "saved";
      console.info(
        `Glasshouse: restored Python and Datasette from this browser's snapshot in ${state.bootMs} ms ` +
          `(${Math.round(saved.heap.byteLength / 1048576)} MB of memory, ${files} files; ms: ${steps.join(", ")}).`,
      );
      return runtime;
    } catch (error) {
      await discardSnapshot(`it could not be restored: ${message(error)}`);
      return null;
    }
  }

  async function discardSnapshot(reason) {
    console.warn(`Glasshouse: deleted this gallery's saved Python snapshot, ${reason}. Starting Python normally instead.`);
    state.snapshot = "none";
    const cache = await snapshotCache().catch(() => null);
    if (cache) await deleteSnapshot(cache, keys).catch(() => {});
  }

  let due = null; // {pyodide, runtime, sitePackages} of a normal boot whose snapshot is not made yet
  let restoreAllowed = true;

  async function doBoot() {
    const started = performance.now();
    // Python starts while the bundle downloads (a first visit, a restarted Service Worker whose caches
    // were evicted, a memory store): each file is waited for when it is first needed, in the order
    // they download (runtime, wheels, the build's files, the database last). If the download fails,
    // its error (an integrity failure, an HTTP status) is the one the reader sees.
    const fetching = downloading || ((await hasAll(await store(), config.precache)) ? null : download());
    if (fetching) fetching.catch(() => {}); // awaited below, on success or failure
    // A failed download ends the boot at once: Pyodide never settles when a file it waits for (its
    // wasm) can no longer arrive, so its own promise cannot be the one that reports the failure.
    const downloadFailed = fetching ? fetching.then(() => new Promise(() => {})) : null;
    try {
      const runtime = await (downloadFailed ? Promise.race([startRuntime(started), downloadFailed]) : startRuntime(started));
      if (fetching) await fetching; // every file stored, so the next visit or restart downloads nothing
      return runtime;
    } catch (error) {
      if (fetching) await fetching;
      throw error;
    }
  }

  async function startRuntime(started) {
    const restored = restoreAllowed && (await restore(started));
    if (restored) return restored;
    report({ phase: "Starting Python" }, true);
    const pyodide = await loadPyodide(pyodideOptions({ _makeSnapshot: Boolean(await snapshotCache()) }));
    const pyodideMs = performance.now() - started;
    report({ phase: "Installing Datasette and plugins" }, true);
    await pyodide.loadPackage(config.packages, { messageCallback: () => {}, errorCallback: (m) => console.warn(m) });
    // Bytecode the build compiled in the same Pyodide (builder/compat.py): imports skip compiling.
    const bytecode = await (await scope.fetch(config.bytecodeURL)).arrayBuffer();
    const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
    pyodide.unpackArchive(bytecode, "zip", { extractDir: sitePackages });
    const { databaseBytes: bytes, lazy } = await openDatabase(pyodide);
    report({ phase: "Starting Datasette" }, true);
    const runtime = await startDatasette(pyodide, {
      databasePath: config.database.path,
      databaseBytes: bytes,
      lazy,
      inspect: inspectData(config),
      runtimeSource: await (await scope.fetch(config.runtimeModuleURL)).text(),
      pluginSources: await fetchPluginSources(config.pluginModules, scope.fetch),
      settings: config.settings,
      metadata: config.metadata,
    });
    booted("fresh", started);
    console.info(`Glasshouse: started in ${state.bootMs} ms (Pyodide ${Math.round(pyodideMs)})`);
    report({ phase: "Ready" }, true);
    if (pyodide.makeMemorySnapshot && (await snapshotCache())) {
      due = { pyodide, runtime, sitePackages };
      state.snapshot = "due";
    }
    return runtime;
  }

  let booting = null;
  const boot = () => {
    booting ||= doBoot().catch((error) => {
      booting = null;
      throw error;
    });
    return booting;
  };

  let inflight = 0;
  let lastActivity = 0;

  async function answer(request) {
    let runtime;
    try {
      runtime = await boot();
    } catch (error) {
      // Files that fail their integrity check are the problem, not Python: say that alone.
      const problem = error.name === "IntegrityError" ? error.message : `Python or Datasette failed to start: ${message(error)}`;
      return errorAnswer(problem, config.securityHeaders);
    }
    try {
      const failures = lazyFailures;
      const result = await callDatasette(runtime, request, { clientURL: config.embedClientURL, securityHeaders: config.securityHeaders });
      if (lazyFailures === failures) return result;
      // SQLite says only "disk I/O error", on a page Datasette may answer with 200: say which part
      // of the database could not be fetched, and what to do.
      return errorAnswer(
        `This gallery reads its database as you browse, and a part this page needs could not be fetched ` +
          `(${message(lazyFailure)}). Check your connection and reload the page.`,
        config.securityHeaders,
        { heading: "Part of this gallery's data could not be loaded", status: 503 },
      );
    } catch (error) {
      if (state.boot === "snapshot") {
        // A restored Python that fails is not trusted again: boot normally and answer from that.
        await discardSnapshot(`a request failed after restoring it: ${message(error)}`);
        restoreAllowed = false;
        booting = null;
        return answer(request);
      }
      return errorAnswer(`Datasette failed on this request: ${message(error)}`, config.securityHeaders);
    }
  }

  async function handle(request) {
    inflight++;
    try {
      return await answer(request);
    } finally {
      inflight--;
      lastActivity = performance.now();
    }
  }

  /** Resolves once no request has been answered for `SNAPSHOT_IDLE_MS` and none is in flight. */
  async function idle() {
    for (;;) {
      await sleep(SNAPSHOT_IDLE_MS);
      if (inflight === 0 && performance.now() - lastActivity >= SNAPSHOT_IDLE_MS) return;
    }
  }

  async function makeSnapshot() {
    const { pyodide, runtime, sitePackages } = due;
    const started = performance.now();
    try {
      await idle();
      await runtime.warm_up(); // off the critical path: the reader already has their page
      await idle();
      // From here to makeMemorySnapshot nothing awaits, so no request can run in between.
      const reason = runtime.prepare_snapshot();
      if (reason) throw new Error(reason);
      const heap = takeMemorySnapshot(pyodide);
      const files = packFiles(pyodide.FS, [sitePackages, PLUGIN_DIR], [config.database.path]);
      await writeSnapshot(await snapshotCache(), keys, config, heap, files);
      state.snapshot = "saved";
      console.info(
        `Glasshouse: saved a snapshot of Python and Datasette (${Math.round(heap.byteLength / 1048576)} MB of memory, ` +
          `${Math.round(files.size / 1048576)} MB of files) in ${Math.round(performance.now() - started)} ms, idle time included.`,
      );
    } catch (error) {
      state.snapshot = "none";
      console.info(`Glasshouse: no snapshot of this gallery's Python this time (${message(error)}); a restart boots normally.`);
    } finally {
      due = null;
    }
  }

  let settling = null;
  const settle = () => (due ? (settling ||= makeSnapshot().finally(() => (settling = null))) : settling || Promise.resolve());

  const status = () => ({ ...state, blocks: lazyReader ? { ...lazyReader.stats } : null });
  return { download, boot, handle, settle, status, store, networkFetch };
}

/** A throttled progress reporter: `report(update, force)` merges `update` and calls `post(status)` at most every 100 ms. */
export function progressReporter(post, total) {
  const status = { type: "progress", phase: "Waiting", loaded: 0, total };
  let last = 0;
  return (update, force = false) => {
    Object.assign(status, update);
    const now = Date.now();
    if (force || now - last > 100) {
      last = now;
      post({ ...status });
    }
  };
}
