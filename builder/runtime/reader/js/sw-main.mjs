// Service Worker mode: the transport that hands `fetch` events to the runtime core.
// Imported statically by the build's generated /sw.js (module Service Workers cannot `import()`).
import config from "../config.mjs";
import { createPyodideModule, loadPyodide } from "../pyodide.mjs";
import { createRuntimeCore, progressReporter } from "./core.mjs";
import { navigationAsksForWorkerMode } from "./fallback.mjs";
import { KEEPALIVE_MESSAGE, withKeepAlive } from "./keepalive.mjs";
import { requestKind } from "./request-kind.mjs";
import { withWebAppManifest } from "./web-app-manifest.mjs";

const CACHE = `glasshouse-${config.buildId}`; // the store's cache (core.mjs)
const KEEPALIVE_URL = new URL("./keepalive.mjs", import.meta.url).pathname;

async function broadcast(message) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true, type: "window" })) client.postMessage(message);
}

const report = progressReporter(broadcast, config.totalBytes);
const core = createRuntimeCore({ config, loadPyodide, createPyodideModule, scope: self, report, snapshotMode: "service-worker" });
const boot = () =>
  core.boot().catch((error) => {
    broadcast({ type: "error", message: String(error && error.message ? error.message : error) });
    throw error;
  });

async function answer(request) {
  const body = ["GET", "HEAD"].includes(request.method) ? null : new Uint8Array(await request.arrayBuffer());
  const result = await core.handle({ method: request.method, url: request.url, headers: [...request.headers], body });
  const headers = new Headers(result.headers);
  if (result.status >= 300 && result.status < 400 && headers.has("location")) {
    return Response.redirect(headers.get("location"), result.status);
  }
  const noBody = request.method === "HEAD" || [204, 304].includes(result.status);
  let page = result.body;
  if (!noBody && (headers.get("content-type") || "").startsWith("text/html")) {
    // Every page keeps this Service Worker awake while it is open (keepalive.mjs), and links the
    // gallery's web app manifest, so it can be installed from any page (web-app-manifest.mjs).
    const html = withKeepAlive(new TextDecoder().decode(page), KEEPALIVE_URL);
    page = new TextEncoder().encode(withWebAppManifest(html, config.webAppManifest));
    headers.delete("content-length");
  }
  return new Response(noBody ? null : page, { status: result.status, headers });
}

// Datasette's static files are real files on the server, precached with the bundle (this build's
// cache, so a new build's bytes never mix with an old one's); a file the bundle lacks is asked of
// the network, and then of Datasette.
async function staticFile(request) {
  const hit = await (await core.store()).match(request.url);
  if (hit) return hit;
  const response = await core.networkFetch(request);
  return response.status === 404 ? answer(request) : response;
}

async function storeFile(request) {
  return (await (await core.store()).match(request.url)) || core.networkFetch(request);
}

self.addEventListener("install", (event) => {
  const downloading = core.download();
  // A first visit starts Python now, while the bundle downloads (the runtime core waits for each file
  // as Pyodide asks for it). A newer build's worker boots once it is activated instead, so a reader's
  // open pages keep one Python in memory while it installs.
  if (!self.registration.active) core.boot().catch(() => {}); // a failure is told once activated, or by the download below
  event.waitUntil(
    downloading
      .then(() => self.skipWaiting())
      .catch((error) => {
        const problem = error.name === "IntegrityError" ? error.message : `Downloading the gallery failed: ${error.message}`;
        broadcast({ type: "error", message: problem });
        throw error;
      }),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith("glasshouse-") && key !== CACHE) await caches.delete(key);
      await self.clients.claim();
      await boot().then(() => broadcast({ type: "ready" }), () => {});
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === KEEPALIVE_MESSAGE) {
    // The ping itself keeps this worker alive; the answer tells the page how Python started.
    event.source.postMessage({ type: KEEPALIVE_MESSAGE, ...core.status() });
  } else if (event.data && event.data.type === "status") {
    event.waitUntil(boot().then(() => event.source.postMessage({ type: "ready" }), () => {}));
  }
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const kind = requestKind(url, self.location.origin);
  if (kind === "foreign" || kind === "server") return;
  // `?_glasshouse_mode=worker` asks for worker mode: let the server send the bootstrap page.
  if (navigationAsksForWorkerMode(url, event.request.mode)) return;
  if (kind === "store") event.respondWith(storeFile(event.request));
  else if (kind === "static") event.respondWith(staticFile(event.request));
  else {
    const answered = answer(event.request);
    event.respondWith(answered);
    // After an answer the runtime may be due to save its snapshot: stay alive until it has.
    event.waitUntil(answered.then(() => core.settle(), () => {}));
  }
});
