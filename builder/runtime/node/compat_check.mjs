// Build-time compatibility check: boot a bundle's Pyodide + Datasette in Node and render pages.
//
// Run by builder/compat.py as `node compat_check.mjs '<json config>'` (or `@config.json`). Config keys:
//   runtimeDir     folder of the Pyodide npm package (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip)
//   lockFile       this build's pyodide-lock.json (file_name entries are "<sha256>/<file>.whl")
//   packageBaseUrl the folder the file_name entries are relative to (ends with "/"): compat.py stages this
//                  build's wheels there, so Node reads no other file of the shared wheel cache
//   packages       names to loadPackage (Datasette and the chosen plugins)
//   database       local path of the database file; databasePath: where it goes in Pyodide's FS
//   runtimeModule  local path of glasshouse_runtime.py
//   pluginModules  [{name, path}]: Glasshouse's built-in Datasette plugins (module name, local path)
//   settings, metadata   passed to glasshouse_runtime.start() as the Service Worker does
//   inspect        optional {size, sha256, table_counts}: Datasette's inspect data, as the reader's runtime passes it
//   pages          [{path, query, contains: [marker, ...], lacks: [marker, ...], footer: [marker, ...]}]:
//                  each must answer HTTP 200, contain no "Traceback", contain every "contains" marker and
//                  none of "lacks", and hold every "footer" marker inside Datasette's <footer class="ft">
//   stdlib         optional path of the compiled standard library (builder/stdlib.py), passed to
//                  loadPyodide as stdLibURL as the reader's browser does; "": npm's python_stdlib.zip
//   bytecodeModule local path of glasshouse_bytecode.py
//   bytecodeOut    optional path: when every page passed, write there a zip of the bytecode of every
//                  site-packages module imported so far (glasshouse_bytecode.site_packages_zip)
//   staticOut      optional folder: when every page passed, write there every static file Datasette
//                  and the plugins serve (/-/static/..., /-/static-plugins/<plugin>/...), each at its
//                  URL path, as Datasette answers it
//   snapshotIn     optional folder holding "heap" and "files": an import snapshot an earlier check of the
//                  same runtime, standard library, wheels and modules made (compat.py keys it so). Python
//                  is restored from it instead of loading the packages and importing Datasette
//   snapshotOut    optional folder (without snapshotIn): after the packages are loaded and Datasette, the
//                  plugins and the runtime modules imported, before the database or anything of the
//                  publisher's reaches Python, write the import snapshot there ("heap", "files")
//
// It boots the bundle as the reader's browser does, with the same runtime core (reader/js/core.mjs:
// startDatasette, callDatasette) and prints one line "GLASSHOUSE_COMPAT_RESULT <json>" on stdout:
// {ok, timings, pages, static: [url, ...], reason?, log}. The exit code is 0 when ok, 1 when not;
// the Python side reads the JSON line either way.
//
// compat.py runs it sandboxed (see builder/compat.py, node_sandbox): Node's permission model limits
// what it may read and write, the environment is empty, and compat_sandbox.mjs (loaded with
// --import before this module) has taken the network, child processes and signals away. The
// plugins run in this process, so they can print a result line too: compat.py checks what it uses.
import fs from "node:fs";
import path from "node:path";
import { PLUGIN_DIR, RUNTIME_MODULE_PATH, callDatasette, startDatasette } from "../reader/js/core.mjs";
import { growingModuleFactory, packFiles, takeMemorySnapshot, unpackFiles } from "../reader/js/snapshot.mjs";

const RESULT_PREFIX = "GLASSHOUSE_COMPAT_RESULT ";
// Datasette's footer (base.html: <footer class="ft">{% include "_footer.html" %}</footer>).
const FOOTER = /<footer class="ft">([\s\S]*?)<\/footer>/;
const ORIGIN = "http://localhost";
// URL paths of every static file Datasette and the plugins serve, as Datasette routes them
// (datasette/app.py: /-/static/ and /-/static-plugins/<name>/, the name also with "_" for "-").
const STATIC_FILES = `
import json, os, datasette
from datasette.plugins import get_plugins
def walk(root, prefix):
    for folder, _dirs, names in os.walk(root):
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            yield prefix + rel
urls = list(walk(os.path.join(os.path.dirname(datasette.__file__), "static"), "/-/static/"))
for plugin in get_plugins():
    if plugin.get("static_path"):
        for name in sorted({plugin["name"], plugin["name"].replace("-", "_")}):
            urls += walk(plugin["static_path"], f"/-/static-plugins/{name}/")
json.dumps(sorted(set(urls)))
`;
// The config is inline JSON, or "@<path>" of a JSON file (compat.py uses a file for configs too
// long for one command-line argument).
const arg = process.argv[2];
const config = JSON.parse(arg.startsWith("@") ? fs.readFileSync(arg.slice(1), "utf8") : arg);
// A build process killed at its hard time limit (or by the kernel) cannot stop this one: notice
// being orphaned and exit, rather than run on and write into a scratch folder being removed.
const parentPid = process.ppid;
setInterval(() => process.ppid !== parentPid && process.exit(1), 1000).unref();
const log = []; // Python's stdout/stderr and Pyodide's messages, in order
const timings = {};
const pages = [];
const staticFiles = []; // URL paths written under config.staticOut
const t0 = performance.now();
const since = () => Math.round(performance.now() - t0);

function finish(ok, reason) {
  const result = { ok, reason: reason || "", timings, pages, static: staticFiles, log: log.join("\n") };
  process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + "\n", () => process.exit(ok ? 0 : 1));
}

// The exception line of a Python traceback ("ModuleNotFoundError: No module named 'x'"): the first
// unindented line after the last "Traceback" header (Pyodide may append hints after it); else the
// last line of a JS error's message.
function shortReason(error) {
  const text = String(error && error.message ? error.message : error).trim();
  const lines = text.split("\n");
  const header = lines.lastIndexOf("Traceback (most recent call last):");
  if (header !== -1) {
    const line = lines.slice(header + 1).find((l) => l.trim() && !/^\s/.test(l));
    if (line) return line.trim();
  }
  const nonEmpty = lines.map((l) => l.trim()).filter(Boolean);
  return nonEmpty.length ? nonEmpty[nonEmpty.length - 1] : "unknown error";
}

// Ask the running Datasette for each static file and write its bytes at its URL path.
async function dumpStaticFiles(get, pyodide) {
  const urls = JSON.parse(pyodide.runPython(STATIC_FILES));
  for (const url of urls) {
    const encoded = url.split("/").map(encodeURIComponent).join("/");
    const answer = await get(encoded);
    if (answer.status !== 200) throw new Error(`Datasette answered HTTP ${answer.status} for its static file ${url}`);
    const target = path.join(config.staticOut, ...url.split("/").filter(Boolean));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, answer.body);
    staticFiles.push(url);
  }
}

const pluginSources = () =>
  Object.fromEntries(config.pluginModules.map(({ name, path: file }) => [name, fs.readFileSync(file, "utf8")]));

// Python with the packages loaded, from the import snapshot (config.snapshotIn) or booted and loaded
// (then, with config.snapshotOut, leaving an import snapshot there).
async function startPython() {
  const { loadPyodide } = await import(path.join(config.runtimeDir, "pyodide.mjs"));
  const options = {
    indexURL: config.runtimeDir.endsWith("/") ? config.runtimeDir : config.runtimeDir + "/",
    lockFileURL: config.lockFile,
    packageBaseUrl: config.packageBaseUrl,
    stdLibURL: config.stdlib || undefined,
    stdout: (line) => log.push(line),
    stderr: (line) => log.push(line),
  };
  if (config.snapshotIn) {
    const heap = new Uint8Array(fs.readFileSync(path.join(config.snapshotIn, "heap")));
    const files = fs.readFileSync(path.join(config.snapshotIn, "files"));
    const { default: createPyodideModule } = await import(path.join(config.runtimeDir, "pyodide.asm.mjs"));
    const pyodide = await loadPyodide({
      ...options, _loadSnapshot: heap, createPyodideModule: growingModuleFactory(createPyodideModule, heap.byteLength),
    });
    unpackFiles(pyodide.FS, files.buffer.slice(files.byteOffset, files.byteOffset + files.byteLength));
    timings.snapshot = "restored";
    timings.pyodide_ms = since();
    timings.packages_ms = 0;
    return pyodide;
  }
  const pyodide = await loadPyodide({ ...options, _makeSnapshot: Boolean(config.snapshotOut) });
  timings.pyodide_ms = since();

  const loadErrors = [];
  await pyodide.loadPackage(config.packages, {
    messageCallback: (m) => log.push(m),
    errorCallback: (m) => {
      log.push(m);
      loadErrors.push(m);
    },
  });
  const missing = config.packages.filter((name) => !(name in pyodide.loadedPackages));
  if (loadErrors.length || missing.length) {
    throw new Error(`loading packages failed${missing.length ? ` (not loaded: ${missing.join(", ")})` : ""}: ${loadErrors.join("; ")}`);
  }
  timings.packages_ms = since() - timings.pyodide_ms;
  if (config.snapshotOut) await makeImportSnapshot(pyodide);
  return pyodide;
}

// Import what startDatasette would, then write the import snapshot to config.snapshotOut. Any
// failure is logged and leaves no snapshot, never fails the check: an import that fails here fails
// again in startDatasette, whose error is the check's verdict as without snapshots.
async function makeImportSnapshot(pyodide) {
  const at = since();
  try {
    pyodide.FS.writeFile(RUNTIME_MODULE_PATH, fs.readFileSync(config.runtimeModule, "utf8"));
    for (const [name, source] of Object.entries(pluginSources())) pyodide.FS.writeFile(`${PLUGIN_DIR}${name}.py`, source);
    const runtime = pyodide.pyimport("glasshouse_runtime");
    const reason = runtime.prepare_import_snapshot(pyodide.toPy(config.pluginModules.map(({ name }) => name)));
    runtime.destroy();
    if (reason) throw new Error(reason);
    const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
    const heap = takeMemorySnapshot(pyodide);
    const files = Buffer.from(await packFiles(pyodide.FS, [sitePackages, PLUGIN_DIR]).arrayBuffer());
    fs.mkdirSync(config.snapshotOut, { recursive: true });
    fs.writeFileSync(path.join(config.snapshotOut, "files"), files);
    fs.writeFileSync(path.join(config.snapshotOut, "heap"), heap);
    timings.snapshot = "made";
  } catch (error) {
    log.push(`No import snapshot: ${shortReason(error)}`);
    timings.snapshot = "refused";
  }
  timings.snapshot_ms = since() - at;
}

async function main() {
  const pyodide = await startPython();
  if (config.snapshotOut && timings.snapshot !== "made") {
    // The snapshot's own check (builder/compat.py _make_import_snapshot) keeps its pages' bytecode and
    // static files with the snapshot only: with none made, they would be kept with nothing.
    timings.start_ms = 0;
    timings.total_ms = since();
    finish(true);
    return;
  }
  const startAt = since();
  const runtime = await startDatasette(pyodide, {
    databasePath: config.databasePath,
    databaseBytes: fs.readFileSync(config.database),
    runtimeSource: fs.readFileSync(config.runtimeModule, "utf8"),
    pluginSources: pluginSources(),
    settings: config.settings,
    metadata: config.metadata,
    inspect: config.inspect || null,
  });
  timings.start_ms = since() - startAt;
  const get = (pathAndQuery) =>
    callDatasette(runtime, { method: "GET", url: ORIGIN + pathAndQuery, headers: [["accept", "text/html,*/*"]], body: null }, {
      clientURL: "/embed-client.mjs",
    });

  const decoder = new TextDecoder();
  for (const page of config.pages) {
    const pageAt = performance.now();
    const result = await get(page.path + (page.query ? "?" + page.query : ""));
    const ms = Math.round(performance.now() - pageAt);
    const status = result.status;
    const bodyBytes = result.body;
    const body = decoder.decode(bodyBytes);
    const headers = Object.fromEntries(result.headers.map(([k, v]) => [k.toLowerCase(), v]));
    const problems = [];
    if (status !== 200) problems.push(`answered HTTP ${status}`);
    if (body.includes("Traceback")) problems.push("contains a Traceback");
    const missingMarkers = (page.contains || []).filter((marker) => !body.includes(marker));
    if (missingMarkers.length) problems.push(`lacks ${missingMarkers.map((m) => JSON.stringify(m)).join(", ")}`);
    const unwanted = (page.lacks || []).filter((marker) => body.includes(marker));
    if (unwanted.length) problems.push(`contains ${unwanted.map((m) => JSON.stringify(m)).join(", ")}`);
    if (page.footer && page.footer.length) {
      const footer = FOOTER.exec(body);
      const notInFooter = page.footer.filter((marker) => !footer || !footer[1].includes(marker));
      if (notInFooter.length) problems.push(`footer lacks ${notInFooter.map((m) => JSON.stringify(m)).join(", ")}`);
    }
    pages.push({
      path: page.path,
      query: page.query || "",
      status,
      ms,
      bytes: bodyBytes.length,
      content_type: headers["content-type"] || "",
      problems,
    });
    if (problems.length) {
      log.push(`--- GET ${page.path}${page.query ? "?" + page.query : ""} ${problems.join("; ")}; body starts:`);
      log.push(body.slice(0, 4000));
    }
  }
  const failed = pages.filter((p) => p.problems.length);
  if (!failed.length && config.bytecodeOut) {
    const bytecodeAt = since();
    // In the home folder (on sys.path, outside site-packages): not in the zip it writes.
    pyodide.FS.writeFile("/home/pyodide/glasshouse_bytecode.py", fs.readFileSync(config.bytecodeModule, "utf8"));
    pyodide.pyimport("glasshouse_bytecode").site_packages_zip("/tmp/glasshouse-bytecode.zip");
    fs.writeFileSync(config.bytecodeOut, pyodide.FS.readFile("/tmp/glasshouse-bytecode.zip"));
    timings.bytecode_ms = since() - bytecodeAt;
  }
  if (!failed.length && config.staticOut) await dumpStaticFiles(get, pyodide);
  timings.total_ms = since();
  if (failed.length) {
    const first = failed[0];
    finish(false, `GET ${first.path}${first.query ? "?" + first.query : ""} ${first.problems.join("; ")}`);
  } else {
    finish(true);
  }
}

main().catch((error) => {
  timings.total_ms = since();
  log.push(String(error && error.stack ? error.stack : error));
  if (error && error.message && error.stack && !error.stack.includes(error.message)) log.push(error.message);
  finish(false, shortReason(error));
});
