// The runtime core, the same in the Service Worker and in worker mode's dedicated Worker:
// download the bundle with progress, boot Pyodide and Datasette, answer one request.
// The build's Node check (compat_check.mjs) uses `startDatasette` and `callDatasette` too.
import { embedHTML } from "./embed.mjs";
import { datasetteTarget, redirectTarget, requestKind, withSecurityHeaders } from "./routes.mjs";
import { downloadAll, hasAll, openStore, readInto, verifiedResponse } from "./store.mjs";

/** Where the Python half of the runtime (glasshouse_runtime.py) is written in Pyodide's file system. */
export const RUNTIME_MODULE_PATH = "/home/pyodide/glasshouse_runtime.py";
/** Where Glasshouse's built-in Datasette plugins (`<name>.py`, e.g. glasshouse_report.py) are written. */
export const PLUGIN_DIR = "/home/pyodide/";

const message = (error) => String(error && error.message ? error.message : error);

/**
 * Write the database, glasshouse_runtime.py and the built-in plugins into `pyodide`'s file
 * system, import the runtime and start Datasette with those plugins registered. `options`:
 * `{databasePath, databaseBytes: Uint8Array, runtimeSource: string, pluginSources: {name: source},
 * settings, metadata}` (`name` a Python module name). The file system takes `databaseBytes` over
 * as the file's contents, not copied (a database may be hundreds of MB): the caller must not
 * change or reuse it. Returns the Python module (a PyProxy with `handle`); Python errors throw.
 */
export async function startDatasette(pyodide, { databasePath, databaseBytes, runtimeSource, pluginSources = {}, settings, metadata }) {
  pyodide.FS.mkdirTree(databasePath.slice(0, databasePath.lastIndexOf("/")) || "/");
  pyodide.FS.writeFile(databasePath, databaseBytes, { canOwn: true });
  pyodide.FS.writeFile(RUNTIME_MODULE_PATH, runtimeSource);
  for (const [name, source] of Object.entries(pluginSources)) pyodide.FS.writeFile(`${PLUGIN_DIR}${name}.py`, source);
  const runtime = pyodide.pyimport("glasshouse_runtime");
  await runtime.start(pyodide.toPy({ database_path: databasePath, settings, metadata, plugins: Object.keys(pluginSources) }));
  return runtime;
}

/** The database's size in bytes, as the build recorded it in `config.precache`. */
const databaseSize = (config) => config.precache.find((file) => file.url === config.database.url).size;

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

/** A self-contained HTML error answer (same shape as `callDatasette`'s, with `securityHeaders`) saying what to do. */
export function errorAnswer(problem, securityHeaders) {
  const escaped = String(problem).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html><meta charset="utf-8"><title>This gallery could not start</title>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em">
<h1>This gallery could not start in your browser</h1><p>${escaped}</p>
<p>Reload the page to try again. If it keeps failing, open the gallery in a new tab in a current
version of Chrome, Edge, Firefox or Safari, or tell the publisher.</p></body>`;
  return {
    status: 500,
    headers: withSecurityHeaders([["Content-Type", "text/html; charset=utf-8"]], securityHeaders),
    body: new TextEncoder().encode(html),
  };
}

/**
 * The runtime of one build in one global scope (`scope`: the Service Worker's or the Worker's
 * `self`). `config` is the build's config.mjs; `report(update, force)` receives progress
 * (`{phase, loaded, total}`). Wraps `scope.fetch` so Pyodide's own downloads (wasm, stdlib,
 * wheels) come from the store. Returns `{download, boot, handle, store, networkFetch}`:
 * `handle(request)` boots on first use and answers like `callDatasette`, or with `errorAnswer`.
 */
export function createRuntimeCore({ config, loadPyodide, createPyodideModule, scope = globalThis, report = () => {} }) {
  const networkFetch = scope.fetch.bind(scope);
  let storePromise = null;
  const store = () => (storePromise ||= openStore(`glasshouse-${config.buildId}`, scope.caches));
  scope.fetch = async (input, init) => {
    // Pyodide passes strings, URL objects or Requests.
    const url = new URL(input instanceof Request ? input.url : String(input), scope.location.href);
    if (requestKind(url, scope.location.origin) === "store") {
      const hit = await (await store()).match(url.href);
      // Pyodide asks for each wheel with its lock's sha256 as `integrity`: checked here too, since
      // a stored copy never meets the browser's own check.
      const integrity = (init && init.integrity) || (input instanceof Request && input.integrity);
      if (hit) return integrity ? verifiedResponse(hit, integrity, url.href) : hit;
    }
    return networkFetch(input, init);
  };

  async function download() {
    report({ phase: "Downloading the runtime and the database", loaded: 0, total: config.totalBytes }, true);
    const onProgress = (loaded) => report({ loaded });
    await downloadAll(await store(), config.precache, { fetchFn: networkFetch, onProgress, securityHeaders: config.securityHeaders });
    report({ loaded: config.totalBytes }, true);
  }

  async function doBoot() {
    const started = performance.now();
    // A restarted Service Worker whose caches were evicted (or a memory store) downloads again.
    if (!(await hasAll(await store(), config.precache))) await download();
    report({ phase: "Starting Python" }, true);
    const pyodide = await loadPyodide({
      indexURL: config.runtimeURL,
      // The standard library the build compiled in the same Pyodide (builder/stdlib.py): imports skip
      // compiling. Builds made before it have none: Pyodide then takes python_stdlib.zip from indexURL.
      stdLibURL: config.stdLibURL,
      createPyodideModule,
      lockFileURL: config.lockFileURL,
      packageBaseUrl: new URL(config.wheelsURL, scope.location.origin).href,
    });
    const pyodideMs = performance.now() - started;
    report({ phase: "Installing Datasette and plugins" }, true);
    await pyodide.loadPackage(config.packages, { messageCallback: () => {}, errorCallback: (m) => console.warn(m) });
    // Bytecode the build compiled in the same Pyodide (builder/compat.py): imports skip compiling.
    const bytecode = await (await scope.fetch(config.bytecodeURL)).arrayBuffer();
    pyodide.unpackArchive(bytecode, "zip", { extractDir: pyodide.runPython("import site; site.getsitepackages()[0]") });
    report({ phase: "Starting Datasette" }, true);
    const runtime = await startDatasette(pyodide, {
      databasePath: config.database.path,
      // Read once into a buffer of the recorded size, which MEMFS then owns: one copy in memory.
      databaseBytes: await readInto(await scope.fetch(config.database.url), databaseSize(config)),
      runtimeSource: await (await scope.fetch(config.runtimeModuleURL)).text(),
      pluginSources: await fetchPluginSources(config.pluginModules, scope.fetch),
      settings: config.settings,
      metadata: config.metadata,
    });
    console.info(`Glasshouse: started in ${Math.round(performance.now() - started)} ms (Pyodide ${Math.round(pyodideMs)})`);
    report({ phase: "Ready" }, true);
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

  async function handle(request) {
    let runtime;
    try {
      runtime = await boot();
    } catch (error) {
      // Files that fail their integrity check are the problem, not Python: say that alone.
      const problem = error.name === "IntegrityError" ? error.message : `Python or Datasette failed to start: ${message(error)}`;
      return errorAnswer(problem, config.securityHeaders);
    }
    try {
      return await callDatasette(runtime, request, { clientURL: config.embedClientURL, securityHeaders: config.securityHeaders });
    } catch (error) {
      return errorAnswer(`Datasette failed on this request: ${message(error)}`, config.securityHeaders);
    }
  }

  return { download, boot, handle, store, networkFetch };
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
