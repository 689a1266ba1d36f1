// Preload of the build's compatibility check (builder/compat.py runs `node --import <this file>`):
// take the network, child processes, workers and signals away from everything that runs after it.
//
// Python in Pyodide reaches Node's globals through its `js` module, so a hostile plugin can call any
// Node API the process can. Node's permission model (also on the command line) already refuses file
// access outside the allowed folders, child processes, workers, addons, WASI, the inspector and
// process.binding; on Node 20-24 it does not cover the network or signals. This module runs before
// compat_check.mjs imports Pyodide and replaces, in the built-in modules' shared export objects
// (what `import`, `process.getBuiltinModule` and Pyodide's `require` all return), every entry point
// that opens a socket, resolves a name, spawns or signals a process with a function that throws
// ERR_ACCESS_DENIED. Functions replaced on prototypes cover instances made later, however made.
//
// It is a second layer, not a boundary on its own: it cannot reach code that holds a reference it
// took before this ran (none does: nothing else runs first), and it knows only the APIs listed here.
// compat.py also runs Node in an empty network namespace when the kernel allows it, which blocks
// TCP, UDP and DNS whatever the JavaScript does (not Unix sockets in the file system: this does).
import childProcess from "node:child_process";
import dgram from "node:dgram";
import dns from "node:dns";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";
import os from "node:os";
import tls from "node:tls";
import workerThreads from "node:worker_threads";

/** A function that throws what the permission model throws, naming the API. */
function denied(api) {
  return function deniedInSandbox() {
    const error = new Error(`${api} is denied in the build's sandbox (builder/runtime/compat_sandbox.mjs)`);
    error.code = "ERR_ACCESS_DENIED";
    throw error;
  };
}

/** Replace `names` of `target` (every function property when `names` is omitted) with `denied`. */
function deny(target, label, names) {
  for (const name of names || Object.keys(target).filter((key) => typeof target[key] === "function")) {
    Object.defineProperty(target, name, { value: denied(`${label}.${name}`), writable: false, configurable: false });
  }
}

// Sockets, TCP and Unix-domain: net.Socket#connect is what net, tls, http, https and http2 connect
// with, net.Server#listen what their servers listen with. The constructors stay (Node makes
// process.stdout a net.Socket on first use); a socket without connect or listen has no handle.
// UDP sockets get their handle when made, so dgram's constructor goes too.
deny(net.Socket.prototype, "net.Socket.prototype", ["connect"]);
deny(net.Server.prototype, "net.Server.prototype", ["listen"]);
deny(net, "net", ["connect", "createConnection", "createServer"]);
deny(tls, "tls", ["connect", "createServer"]);
deny(http, "http", ["request", "get", "createServer"]);
deny(https, "https", ["request", "get", "createServer"]);
deny(http2, "http2", ["connect", "createServer", "createSecureServer"]);
deny(dgram.Socket.prototype, "dgram.Socket.prototype", ["bind", "connect", "send"]);
deny(dgram, "dgram", ["createSocket", "Socket"]);
// Name resolution leaks data in the names it asks for: every function of dns and dns/promises.
deny(dns.Resolver.prototype, "dns.Resolver.prototype");
deny(dns.promises.Resolver.prototype, "dns.promises.Resolver.prototype");
deny(dns.promises, "dns.promises");
deny(dns, "dns");
// Web APIs that open connections (Node 20-24 ship fetch and WebSocket, some EventSource).
for (const name of ["fetch", "WebSocket", "EventSource"]) {
  Object.defineProperty(globalThis, name, { value: denied(name), writable: false, configurable: false });
}
// Processes and threads: the permission model refuses these already; this says so earlier and
// keeps refusing if a later Node grants them by default.
deny(childProcess, "child_process");
deny(workerThreads, "worker_threads", ["Worker"]);
// Signals: the permission model does not cover them, and the worker runs as the same user.
deny(process, "process", ["kill", "_kill"]);
// process.binding is refused under the permission model, but Emscripten's NODEFS (in Pyodide's
// start-up) reads the open() flags from process.binding("constants"): answer that one from the
// public modules' constants, and refuse the rest as before.
const constants = Object.freeze({ fs: Object.freeze({ ...fs.constants }), os: Object.freeze({ ...os.constants }) });
const binding = denied("process.binding");
Object.defineProperty(process, "binding", {
  value: (name) => (name === "constants" ? constants : binding()),
  writable: false,
  configurable: false,
});
// `import { connect } from "node:net"` reads the ES module facade, which is a copy: update it.
syncBuiltinESMExports();
