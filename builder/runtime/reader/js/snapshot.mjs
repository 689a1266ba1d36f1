// Pyodide memory snapshots of a booted runtime, so a stopped Service Worker (or a reloaded
// worker-mode Worker) gets Python and Datasette back in well under a second instead of booting.
//
// A snapshot is made in the reader's browser after the first boot (so it matches this browser's
// Pyodide build and time zone), once the runtime is idle, and kept in the build's own cache
// (`glasshouse-<build id>`: deleted with the build's other files). It has two entries:
//   heap   Pyodide's `makeMemorySnapshot()`: the WebAssembly memory plus the JavaScript references
//          Python holds (header "x-glasshouse-snapshot": JSON `{format, buildId, runtimeURL, heapBytes, filesBytes}`)
//   files  the files the booted Python relies on (site-packages with the build's bytecode, the
//          runtime module and plugins), packed by `packFiles`: a snapshot holds memory, not files.
// Pyodide's snapshot API is private (`_makeSnapshot`, `makeMemorySnapshot`, `_loadSnapshot`); a
// snapshot that fails to restore is deleted and the caller boots normally.

/** Bumped whenever what a snapshot holds changes: older snapshots are then ignored and replaced. */
export const SNAPSHOT_FORMAT = 1;
const META_HEADER = "x-glasshouse-snapshot";

/** The cache keys of this build's snapshot for `mode` ("service-worker" or "worker"): `{heap, files}` (absolute URLs). */
export function snapshotKeys(config, mode, origin) {
  const base = new URL(`/_glasshouse_snapshot/${config.buildId}/${mode}-v${SNAPSHOT_FORMAT}/`, origin);
  return { heap: new URL("heap", base).href, files: new URL("files", base).href };
}

/**
 * The files under `roots` (absolute paths in Pyodide's file system `FS`) packed into one Blob:
 * a little-endian u32 header length, the header (JSON `{dirs: [path], files: [[path, size, mtimeMs]]}`),
 * then every file's bytes in order. Paths in `skip` (e.g. the database file) are left out.
 */
export function packFiles(FS, roots, skip = []) {
  const dirs = [];
  const files = [];
  const parts = [];
  const walk = (path) => {
    if (skip.includes(path)) return;
    const stat = FS.lstat(path);
    if (FS.isDir(stat.mode)) {
      dirs.push(path);
      for (const name of FS.readdir(path)) if (name !== "." && name !== "..") walk(`${path}/${name}`);
    } else if (FS.isFile(stat.mode)) {
      const bytes = FS.readFile(path);
      files.push([path, bytes.byteLength, stat.mtime.getTime()]);
      parts.push(bytes);
    }
  };
  for (const root of roots.map((path) => path.replace(/\/$/, ""))) if (FS.analyzePath(root).exists) walk(root);
  const header = new TextEncoder().encode(JSON.stringify({ dirs, files }));
  return new Blob([new Uint32Array([header.byteLength]), header, ...parts]);
}

/** Write the files of a `packFiles` pack (`buffer`: ArrayBuffer) into `FS`, with their modification times. Returns the file count. */
export function unpackFiles(FS, buffer) {
  const headerBytes = new Uint32Array(buffer, 0, 1)[0];
  const { dirs, files } = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerBytes)));
  for (const dir of dirs) FS.mkdirTree(dir);
  let offset = 4 + headerBytes;
  for (const [path, size, mtime] of files) {
    if (offset + size > buffer.byteLength) throw new Error(`the snapshot's file pack is truncated at ${path}`);
    // canOwn: the file keeps a view into `buffer` instead of a copy.
    FS.writeFile(path, new Uint8Array(buffer, offset, size), { canOwn: true });
    // Same times as when the snapshot was made: Jinja's template cache compares them.
    FS.utime(path, mtime, mtime);
    offset += size;
  }
  return files.length;
}

/**
 * `pyodide.makeMemorySnapshot()` of a Pyodide loaded with `_makeSnapshot: true`: Uint8Array.
 * Pyodide checks that the JavaScript objects Python holds can be found again after a restore; it
 * expects `loadedPackages` to be empty (a restored Pyodide starts with an empty one), so the
 * names of the packages loaded are set aside for the copy and put back. Throws Pyodide's errors
 * ("Can't serialize object at index ...") for any other JavaScript object Python still holds.
 */
export function takeMemorySnapshot(pyodide) {
  const loaded = pyodide.loadedPackages;
  const names = { ...loaded };
  for (const name of Object.keys(names)) delete loaded[name];
  try {
    return pyodide.makeMemorySnapshot();
  } finally {
    Object.assign(loaded, names);
  }
}

/**
 * `createPyodideModule` whose WebAssembly memory is grown to `bytes` before Pyodide copies a
 * snapshot of that size into it. Pyodide sets `INITIAL_MEMORY`, which this build ignores (its
 * memory is declared in the module), so a snapshot over about 30 MB otherwise fails with
 * "offset is out of bounds" (pyodide/pyodide#6254).
 */
export function growingModuleFactory(createPyodideModule, bytes) {
  return async (settings) => {
    const module = await createPyodideModule(settings);
    if (module.HEAP8.length < bytes && !module.growMemory(bytes)) {
      throw new Error(`the browser could not grow Python's memory to ${Math.round(bytes / 1048576)} MB`);
    }
    return module;
  };
}

/**
 * Read this build's snapshot from `cache` (a Cache Storage cache): `{heap: Uint8Array, files: ArrayBuffer}`,
 * or `null` when there is none. Throws `Error` (saying what is wrong) for one that is not this
 * build's, not this format's or whose sizes do not match its header.
 */
export async function readSnapshot(cache, keys, config) {
  const heapResponse = await cache.match(keys.heap);
  if (!heapResponse) return null;
  const filesResponse = await cache.match(keys.files);
  if (!filesResponse) throw new Error("its file pack is missing");
  let meta;
  try {
    meta = JSON.parse(heapResponse.headers.get(META_HEADER));
  } catch {
    meta = null;
  }
  if (!meta || meta.format !== SNAPSHOT_FORMAT || meta.buildId !== config.buildId || meta.runtimeURL !== config.runtimeURL) {
    throw new Error("it was made for another build, runtime or snapshot format");
  }
  const [heap, files] = await Promise.all([heapResponse.arrayBuffer(), filesResponse.arrayBuffer()]);
  if (heap.byteLength !== meta.heapBytes || files.byteLength !== meta.filesBytes) {
    throw new Error(`its size does not match (${heap.byteLength} of ${meta.heapBytes} bytes of memory, ${files.byteLength} of ${meta.filesBytes} bytes of files)`);
  }
  return { heap: new Uint8Array(heap), files };
}

/** Store a snapshot (`heap`: Uint8Array from `makeMemorySnapshot`, `files`: Blob from `packFiles`) in `cache`. */
export async function writeSnapshot(cache, keys, config, heap, files) {
  const meta = { format: SNAPSHOT_FORMAT, buildId: config.buildId, runtimeURL: config.runtimeURL, heapBytes: heap.byteLength, filesBytes: files.size };
  const headers = { "content-type": "application/octet-stream" };
  // Files first: a heap entry without its files is read as damaged, never as valid.
  await cache.put(keys.files, new Response(files, { headers }));
  await cache.put(keys.heap, new Response(heap, { headers: { ...headers, [META_HEADER]: JSON.stringify(meta) } }));
}

/** Remove this build's snapshot from `cache` (a damaged one, or one that failed to restore). */
export async function deleteSnapshot(cache, keys) {
  await cache.delete(keys.heap);
  await cache.delete(keys.files);
}
