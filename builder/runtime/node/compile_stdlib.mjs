// Compile Pyodide's standard library in Pyodide itself: once per runtime, not per build.
//
// Run by builder/stdlib.py as `node compile_stdlib.mjs '<json config>'`, sandboxed as the build's
// compatibility check is (builder/compat.py, node_sandbox). Config keys:
//   runtimeDir      folder of the Pyodide npm package (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip)
//   bytecodeModule  local path of glasshouse_bytecode.py
//   out             path of the zip to write (glasshouse_bytecode.stdlib_zip's)
// Prints one line "GLASSHOUSE_STDLIB_RESULT <json>": {ok, counts?, reason?, ms}; exits 0 when ok.
import fs from "node:fs";
import path from "node:path";

const RESULT_PREFIX = "GLASSHOUSE_STDLIB_RESULT ";
const config = JSON.parse(process.argv[2]);
const t0 = performance.now();

function finish(result) {
  const line = RESULT_PREFIX + JSON.stringify({ ...result, ms: Math.round(performance.now() - t0) }) + "\n";
  process.stdout.write(line, () => process.exit(result.ok ? 0 : 1));
}

async function main() {
  const { loadPyodide } = await import(path.join(config.runtimeDir, "pyodide.mjs"));
  const pyodide = await loadPyodide({ indexURL: config.runtimeDir.endsWith("/") ? config.runtimeDir : config.runtimeDir + "/" });
  pyodide.FS.writeFile("/home/pyodide/glasshouse_bytecode.py", fs.readFileSync(config.bytecodeModule, "utf8"));
  const counts = pyodide.pyimport("glasshouse_bytecode").stdlib_zip("/tmp/glasshouse-stdlib.zip").toJs({ dict_converter: Object.fromEntries });
  fs.writeFileSync(config.out, pyodide.FS.readFile("/tmp/glasshouse-stdlib.zip"));
  finish({ ok: true, counts });
}

main().catch((error) => finish({ ok: false, reason: String(error && error.message ? error.message : error) }));
