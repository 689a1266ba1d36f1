// Glasshouse gallery Service Worker (module). Written into each bundle by builder/bundle.py,
// which replaces the two placeholders below. It downloads the bundle into Cache Storage with
// progress, boots Pyodide and Datasette, and answers every app request inside the browser.
import { loadPyodide } from "__RUNTIME_URL__pyodide.mjs";
import createPyodideModule from "__RUNTIME_URL__pyodide.asm.mjs";

const CONFIG = /*__GLASSHOUSE_CONFIG__*/ {};
const CACHE = `glasshouse-${CONFIG.buildId}`;
const STORE_PREFIXES = ["/_runtime/", "/_wheels/", "/_build/"];

// ---- progress to the bootstrap page ---------------------------------------------------------
const status = { type: "progress", phase: "Waiting", loaded: 0, total: CONFIG.totalBytes };
let lastPost = 0;
async function broadcast(message) {
  const clients = await self.clients.matchAll({ includeUncontrolled: true, type: "window" });
  for (const client of clients) client.postMessage(message);
}
function report(update, force = false) {
  Object.assign(status, update);
  const now = Date.now();
  if (force || now - lastPost > 100) {
    lastPost = now;
    broadcast({ ...status });
  }
}

// ---- download the bundle into Cache Storage -------------------------------------------------
// Every URL is immutable (versioned or content-addressed), so a copy in any of our caches is good.
async function fetchIntoCache(cache, file, counter) {
  const existing = await caches.match(file.url);
  if (existing) {
    counter.loaded += file.size;
    report({ loaded: counter.loaded });
    if (!(await cache.match(file.url))) await cache.put(file.url, existing);
    return;
  }
  const response = await fetch(file.url, { integrity: file.integrity, cache: "no-cache" });
  if (!response.ok) throw new Error(`${file.url} answered HTTP ${response.status}`);
  const reader = response.body.getReader();
  const chunks = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    counter.loaded += value.byteLength;
    report({ loaded: counter.loaded });
  }
  const headers = new Headers({ "Content-Type": response.headers.get("Content-Type") || "application/octet-stream" });
  await cache.put(file.url, new Response(new Blob(chunks), { status: 200, headers }));
}

async function precache() {
  const cache = await caches.open(CACHE);
  const counter = { loaded: 0 };
  report({ phase: "Downloading the runtime and the database", loaded: 0 }, true);
  const queue = [...CONFIG.precache];
  const workers = Array.from({ length: 4 }, async () => {
    while (queue.length) await fetchIntoCache(cache, queue.shift(), counter);
  });
  await Promise.all(workers);
  report({ loaded: CONFIG.totalBytes }, true);
}

// Pyodide fetches its wasm, stdlib and wheels itself; serve those from Cache Storage, so that a
// restarted worker boots without the network.
const networkFetch = self.fetch.bind(self);
self.fetch = async (input, init) => {
  // Pyodide passes strings, URL objects or Requests.
  const url = new URL(input instanceof Request ? input.url : String(input), self.location.href);
  if (url.origin === self.location.origin && STORE_PREFIXES.some((p) => url.pathname.startsWith(p))) {
    const hit = await caches.match(url.href);
    if (hit) return hit;
  }
  return networkFetch(input, init);
};

// ---- boot Pyodide and Datasette once per worker lifetime ------------------------------------
let booting = null;
function boot() {
  if (!booting) {
    booting = doBoot().catch((error) => {
      booting = null;
      broadcast({ type: "error", message: String(error && error.message ? error.message : error) });
      throw error;
    });
  }
  return booting;
}

async function doBoot() {
  const started = performance.now();
  const lap = {};
  // A worker restarted after its caches were evicted downloads the bundle again.
  for (const file of CONFIG.precache) {
    if (!(await caches.match(file.url))) {
      await precache();
      break;
    }
  }
  report({ phase: "Starting Python" }, true);
  const pyodide = await loadPyodide({
    indexURL: CONFIG.runtimeURL,
    createPyodideModule,
    lockFileURL: CONFIG.lockFileURL,
    packageBaseUrl: new URL(CONFIG.wheelsURL, self.location.origin).href,
  });
  lap.pyodide = performance.now() - started;
  report({ phase: "Installing Datasette and plugins" }, true);
  await pyodide.loadPackage(CONFIG.packages, { messageCallback: () => {}, errorCallback: (m) => console.warn(m) });
  // Bytecode the build compiled in the same Pyodide (builder/compat.py): imports skip compiling.
  const bytecode = await (await self.fetch(CONFIG.bytecodeURL)).arrayBuffer();
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  pyodide.unpackArchive(bytecode, "zip", { extractDir: sitePackages });
  lap.packages = performance.now() - started - lap.pyodide;
  report({ phase: "Opening the database" }, true);
  const db = await (await self.fetch(CONFIG.database.url)).arrayBuffer();
  pyodide.FS.mkdirTree("/data");
  pyodide.FS.writeFile(CONFIG.database.path, new Uint8Array(db));
  const source = await (await self.fetch(CONFIG.runtimeModuleURL)).text();
  pyodide.FS.writeFile("/home/pyodide/glasshouse_runtime.py", source);
  const runtime = pyodide.pyimport("glasshouse_runtime");
  report({ phase: "Starting Datasette" }, true);
  await runtime.start(
    pyodide.toPy({ database_path: CONFIG.database.path, settings: CONFIG.settings, metadata: CONFIG.metadata }),
  );
  lap.datasette = performance.now() - started - lap.pyodide - lap.packages;
  console.info(
    `Glasshouse: started in ${Math.round(performance.now() - started)} ms ` +
      `(Pyodide ${Math.round(lap.pyodide)}, packages ${Math.round(lap.packages)}, Datasette ${Math.round(lap.datasette)})`,
  );
  report({ phase: "Ready" }, true);
  await broadcast({ type: "ready" });
  return runtime;
}

// ---- answering requests ---------------------------------------------------------------------
function errorPage(message) {
  const escaped = String(message).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const html = `<!doctype html><meta charset="utf-8"><title>This gallery could not start</title>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em">
<h1>This gallery could not start in your browser</h1><p>${escaped}</p>
<p>Reload the page to try again. If it keeps failing, open the gallery in a new tab in a current
version of Chrome, Edge, Firefox or Safari, or tell the publisher.</p></body>`;
  return new Response(html, { status: 500, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

async function answer(request) {
  let runtime;
  try {
    runtime = await boot();
  } catch (error) {
    return errorPage(`Python or Datasette failed to start: ${error && error.message ? error.message : error}`);
  }
  const url = new URL(request.url);
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : new Uint8Array(await request.arrayBuffer());
  let result;
  try {
    result = await runtime.handle(request.method, url.pathname, url.search.slice(1), [...request.headers], body, url.host, url.protocol.slice(0, -1));
  } catch (error) {
    return errorPage(`Datasette failed on this request: ${error && error.message ? error.message : error}`);
  }
  const headers = new Headers(result.headers);
  if (result.status >= 300 && result.status < 400 && headers.has("location")) {
    return Response.redirect(new URL(headers.get("location"), url).href, result.status);
  }
  const noBody = request.method === "HEAD" || result.status === 204 || result.status === 304;
  return new Response(noBody ? null : result.body, { status: result.status, headers });
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    precache()
      .then(() => self.skipWaiting())
      .catch((error) => {
        broadcast({ type: "error", message: `Downloading the gallery failed: ${error.message}` });
        throw error;
      }),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith("glasshouse-") && key !== CACHE) await caches.delete(key);
      await self.clients.claim();
      await boot().catch(() => {});
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "status") {
    event.waitUntil(boot().then(() => event.source.postMessage({ type: "ready" }), () => {}));
  }
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || url.pathname === "/sw.js") return;
  if (STORE_PREFIXES.some((p) => url.pathname.startsWith(p))) {
    event.respondWith(caches.match(event.request).then((hit) => hit || networkFetch(event.request)));
    return;
  }
  event.respondWith(answer(event.request));
});
