// Worker mode: the transport that takes requests from the page shell (shell.mjs) by postMessage.
// Started by the bootstrap page as `new Worker(<this build>/js/worker-main.mjs, {type: "module"})`.
//
// Messages in:  {type: "request", id, request: {method, url, headers: [[name, value]], body: Uint8Array | null}}
// Messages out: {type: "progress", phase, loaded, total}, {type: "ready", database: "lazy" | "whole"}, {type: "error", message},
//               {type: "response", id, response: {status, headers, body: Uint8Array}}
import config from "../config.mjs";
import { createPyodideModule, loadPyodide } from "../pyodide.mjs";
import { createRuntimeCore, progressReporter } from "./core.mjs";

const report = progressReporter((message) => self.postMessage(message), config.totalBytes);
// A page reload in worker mode starts a new Worker: it restores the snapshot like a Service Worker.
const core = createRuntimeCore({ config, loadPyodide, createPyodideModule, scope: self, report, snapshotMode: "worker" });

self.addEventListener("message", async (event) => {
  const data = event.data || {};
  if (data.type !== "request") return;
  const response = await core.handle(data.request);
  // Transfer, never share: a view into a larger buffer (Pyodide's memory) is copied first.
  const whole = response.body.byteOffset === 0 && response.body.byteLength === response.body.buffer.byteLength;
  if (!whole) response.body = response.body.slice();
  self.postMessage({ type: "response", id: data.id, response }, [response.body.buffer]);
  core.settle();
});

core.boot().then(
  () => self.postMessage({ type: "ready", database: core.status().database }),
  (error) => self.postMessage({ type: "error", message: String(error && error.message ? error.message : error) }),
);
