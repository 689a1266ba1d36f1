// The bootstrap page (index.html, served for every app path of the gallery origin): show progress,
// register the Service Worker, and switch to worker mode by itself where no Service Worker can run
// (none in this browser, registration refused, storage denied, or no sign of life within a few
// seconds; a Service Worker that reports progress is never abandoned for being slow). The policy
// is fallback.mjs's; this module gathers its facts and acts on its decisions.
import config from "../config.mjs";
import {
  SERVICE_WORKER_TIMEOUT_MS, asksForWorkerMode, decideMode, readyAction, workerModeForced,
} from "./fallback.mjs";
import { RELOADS_KEY } from "./reload-count.mjs";
import URL_MAP from "./url-map.mjs";
import { EMBED_PREFIX, datasetteTarget } from "./url-rewrite.mjs";
import { startShell, workerClient } from "./shell.mjs";

const $ = (id) => document.getElementById(id);
const mb = (n) => (n / 1048576).toFixed(1) + " MB";
const embed = location.pathname.startsWith(EMBED_PREFIX);
const framed = window.top !== window.self;
let mode = "starting";

function session(name, value) {
  try {
    if (value === undefined) return sessionStorage.getItem(name);
    sessionStorage.setItem(name, value);
  } catch {
    return null; // no storage at all in this frame
  }
  return null;
}

function setMode(value) {
  mode = value;
  document.documentElement.dataset.glasshouseMode = value;
}

function showProgress(data) {
  if (data.phase) $("phase").textContent = data.phase + "…";
  const total = data.total || config.totalBytes;
  $("bar").value = total ? Math.min(100, (100 * (data.loaded || 0)) / total) : 0;
  $("detail").textContent = `${mb(data.loaded || 0)} of ${mb(total)} downloaded`;
}

function fail(message) {
  $("problem").hidden = false;
  $("problem").textContent = message;
  $("phase").textContent = "This gallery could not start.";
  $("newtab").hidden = false;
  document.documentElement.dataset.glasshouseMode = "failed";
}

// ---- worker mode ---------------------------------------------------------------------------
function startWorkerMode(reason) {
  if (mode === "worker") return;
  setMode("worker");
  $("mode").hidden = false;
  $("mode").textContent = `Running without a Service Worker (${reason}): this visit downloads the gallery into this page.`;
  console.info(`Glasshouse: worker mode (${reason}).`);
  if (typeof Worker === "undefined") {
    fail("This browser runs neither a Service Worker nor a Web Worker here, which this gallery needs. Open the full view in a current browser.");
    return;
  }
  let worker;
  try {
    worker = new Worker(new URL("./worker-main.mjs", import.meta.url), { type: "module" });
  } catch (error) {
    fail(`This browser could not start the gallery's worker (${error.message}). Open the full view in a current browser.`);
    return;
  }
  worker.addEventListener("error", (event) =>
    fail(`The gallery's worker failed to start (${event.message || "module workers unsupported"}). Open the full view in a current browser.`),
  );
  const client = workerClient(worker, (data) => {
    if (data.type === "progress") showProgress(data);
    else if (data.type === "ready" && data.database) document.documentElement.dataset.glasshouseDatabase = data.database;
    else if (data.type === "error") fail(`${data.message} Reload the page to try again. If it keeps failing, tell the publisher.`);
  });
  startShell(client, { onFirstPage: () => ($("loading").hidden = true) });
}

// ---- Service Worker mode ----------------------------------------------------------------------
function onServiceWorkerMessage(event) {
  if (mode !== "service-worker" && mode !== "starting") return;
  const data = event.data || {};
  if (data.type === "progress") {
    progressSeen = true;
    showProgress(data);
  } else if (data.type === "ready") {
    $("phase").textContent = "Ready. Opening…";
    $("bar").value = 100;
    // Reload once: the Service Worker now controls this page and answers the same URL.
    const tries = Number(session(RELOADS_KEY) || 0);
    if (readyAction(tries) === "give-up") {
      fail("The gallery started, but this browser did not hand the page to it. Open it in a new tab, or reload.");
      session(RELOADS_KEY, "0");
      return;
    }
    session(RELOADS_KEY, String(tries + 1));
    location.reload();
  } else if (data.type === "error") {
    fail(data.message + " Reload the page to try again. If it keeps failing, tell the publisher.");
  }
}

let progressSeen = false;

async function start() {
  // A page script in worker mode set `location` inside the shell's frame: hand the URL to the shell.
  try {
    if (framed && window.parent.__glasshouseShell) {
      window.parent.__glasshouseShell.navigate(location.href);
      return;
    }
  } catch {
    // a cross-origin parent: an embed in an article
  }
  document.documentElement.classList.toggle("compact", embed || framed);
  $("newtab").querySelector("a").href = datasetteTarget(location.href).fullView;
  // Shown by default, so a page whose scripts never run still offers the way out.
  $("newtab").hidden = !(embed || framed);

  if (asksForWorkerMode(location.href)) session("glasshouse-mode", "worker");
  const state = {
    forced: workerModeForced(location.href, session("glasshouse-mode")),
    hasServiceWorker: "serviceWorker" in navigator,
    registerFailed: false,
    workerRedundant: false,
    controlled: false,
    progressSeen: false,
    elapsedMs: 0,
    timeoutMs: SERVICE_WORKER_TIMEOUT_MS,
  };
  const first = decideMode(state);
  if (first.mode === "worker") return startWorkerMode(first.reason);

  navigator.serviceWorker.addEventListener("message", onServiceWorkerMessage);
  let registration;
  try {
    registration = await navigator.serviceWorker.register(URL_MAP.server.serviceWorker, { type: "module", scope: "/" });
  } catch (error) {
    console.info(`Glasshouse: Service Worker refused (${error.message}).`);
    state.registerFailed = true;
    return startWorkerMode(decideMode(state).reason);
  }
  setMode("service-worker");
  const worker = registration.installing || registration.waiting || registration.active;
  worker.addEventListener("statechange", () => {
    if (worker.state === "redundant" && !navigator.serviceWorker.controller) state.workerRedundant = true;
    else progressSeen = true; // installed or activating: a sign of life as good as progress
  });
  // A worker that is already running (for example after a hard reload) is asked whether it is ready.
  if (registration.active) registration.active.postMessage({ type: "status" });
  const started = Date.now();
  const check = setInterval(() => {
    Object.assign(state, {
      elapsedMs: Date.now() - started, progressSeen, controlled: Boolean(navigator.serviceWorker.controller),
    });
    const decision = decideMode(state);
    if (decision.mode === "wait") return;
    clearInterval(check);
    if (decision.mode === "worker") startWorkerMode(decision.reason);
  }, 250);
  setTimeout(() => {
    if (mode === "service-worker" && $("problem").hidden && $("bar").value < 100) {
      $("detail").textContent += " — still working; a slow connection can take a minute.";
    }
  }, 60000);
}

start();
