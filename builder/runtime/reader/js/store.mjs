// Download the bundle's files with progress into Cache Storage, or into memory where the browser
// gives this origin no storage (Cache Storage throws: blocked third-party storage, some private
// windows). Used by the Service Worker and the Worker alike.
import { STORE_PREFIXES } from "./request-kind.mjs";
import { withSecurityHeaders } from "./security-headers.mjs";

/** Whether `url`'s bytes never change (versioned or content-addressed), so any build's cached copy will do. */
const immutable = (url) => STORE_PREFIXES.some((prefix) => new URL(url, "http://x/").pathname.startsWith(prefix));

/**
 * Open the place bundle files are kept: `{kind: "cache" | "memory", match(url), put(url, response)}`.
 * `match` also looks in the other caches of this origin for immutable URLs (runtime files and
 * wheels are shared by builds), never for Datasette's static files, whose URLs every build reuses. Falls back to memory when `cachesAPI` is missing or `open` throws.
 */
export async function openStore(cacheName, cachesAPI = globalThis.caches) {
  if (cachesAPI) {
    try {
      const cache = await cachesAPI.open(cacheName);
      return cacheStore(cache, cachesAPI);
    } catch (error) {
      console.info(`Glasshouse: no Cache Storage here (${error && error.message}); keeping the bundle in memory.`);
    }
  }
  return memoryStore();
}

function cacheStore(cache, cachesAPI) {
  const memory = memoryStore();
  return {
    kind: "cache",
    async match(url) {
      // Bundle URLs are paths: a query (Datasette's `app.css?<hash>`) does not name other bytes.
      const options = { ignoreSearch: true };
      return (await cache.match(url, options)) || (immutable(url) && (await cachesAPI.match(url, options))) || memory.match(url);
    },
    /**
     * Stream `response` into Cache Storage (its body is consumed, never held whole in memory). If
     * that fails (quota exceeded, storage revoked mid-way), `again()` (a fresh response for the same
     * URL) goes into memory instead; without `again` the error is thrown.
     */
    async put(url, response, again) {
      try {
        await cache.put(url, response);
      } catch (error) {
        if (!again) throw error;
        await memory.put(url, await again());
      }
    },
  };
}

/** A store in memory (bytes per URL); each `match` returns a fresh `Response`. */
export function memoryStore() {
  const files = new Map();
  return {
    kind: "memory",
    async match(url) {
      const entry = files.get(new URL(url, "http://x/").pathname);
      return entry && new Response(entry.bytes, { status: 200, headers: entry.headers });
    },
    async put(url, response, _again) {
      files.set(new URL(url, "http://x/").pathname, { bytes: await response.arrayBuffer(), headers: [...response.headers] });
    },
  };
}

/** A bundle file whose bytes are not the ones the build recorded (its SRI `integrity` failed). */
export class IntegrityError extends Error {
  constructor(url) {
    super(`This gallery's files failed an integrity check: ${new URL(url, "http://x/").pathname} is not the file this gallery was published with.`);
    this.name = "IntegrityError";
    this.url = url;
  }
}

/**
 * Why `fetchFn(url, {integrity})` rejected: a browser says only "Failed to fetch", whether the network
 * failed or the bytes did not match. Asked again without `integrity`: if that answers, the bytes
 * were wrong (`IntegrityError`); else the original `error`.
 */
async function fetchFailure(url, fetchFn, error) {
  try {
    const plain = await fetchFn(url, { cache: "no-store" });
    if (plain.body) await plain.body.cancel();
    return plain.ok ? new IntegrityError(url) : error;
  } catch {
    return error;
  }
}

/** `response`'s bytes as a fresh `Response` if their sha256 matches `integrity` (`sha256-<base64>`), else `IntegrityError`. */
export async function verifiedResponse(response, integrity, url) {
  const bytes = await response.arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const expected = integrity.startsWith("sha256-") ? integrity.slice("sha256-".length) : null;
  if (expected === null || btoa(String.fromCharCode(...digest)) !== expected) throw new IntegrityError(url);
  return new Response(bytes, { status: response.status, headers: response.headers });
}

/**
 * Put every file of `files` (`[{url, size, integrity}]`) into `store`, `concurrency` at a time.
 * Each download streams into the store as it arrives (with a Cache Storage store no file is ever
 * whole in this worker's memory), the browser's fetch checking its `integrity`.
 * `onProgress(loadedBytes)` is called as bytes arrive (files found in the store count at once);
 * `securityHeaders` (`[[name, value]]`, the build's) go on every stored response.
 * `inflight` (a `Map`, optional) gets, before any download starts, each file's URL path mapped to a
 * promise that resolves when that file's turn has ended: `true` once it is in the store, `false`
 * if its download failed or never ran (another file's failure stopped the queue); it never rejects.
 * Whoever needs one file can wait for it alone (`waitForFile`) while the rest still download.
 * Throws `Error("<url> answered HTTP <status>")` for a failed download, `IntegrityError` for bytes
 * that do not match their `integrity`.
 */
export async function downloadAll(
  store, files, { fetchFn = globalThis.fetch, onProgress = () => {}, concurrency = 4, securityHeaders = [], inflight = null } = {},
) {
  const ended = new Map(); // URL path -> resolve(stored) of its `inflight` promise
  for (const file of files) {
    const path = urlPath(file.url);
    if (inflight) inflight.set(path, new Promise((resolve) => ended.set(path, resolve)));
  }
  const end = (file, stored) => {
    const resolve = ended.get(urlPath(file.url));
    if (resolve) resolve(stored);
  };
  try {
    return await downloadQueue(store, files, { fetchFn, onProgress, concurrency, securityHeaders, end });
  } finally {
    for (const resolve of ended.values()) resolve(false); // files the queue never reached (a no-op for the others)
  }
}

const urlPath = (url) => new URL(url, "http://x/").pathname;

/**
 * Wait until the file at `url` (a URL or path) is no longer being downloaded by a `downloadAll`
 * that was given `inflight`. Resolves at once for a file not in `inflight`; throws `Error` if its
 * download failed, so a caller never falls back to bytes nobody checked.
 */
export async function waitForFile(inflight, url) {
  const path = urlPath(url);
  const pending = inflight.get(path);
  if (pending && !(await pending)) throw new Error(`${path} could not be downloaded`);
}

async function downloadQueue(store, files, { fetchFn, onProgress, concurrency, securityHeaders, end }) {
  let loaded = 0;
  const advance = (bytes) => {
    loaded += bytes;
    onProgress(loaded);
  };
  const queue = [...files];
  const fetchOne = async (file) => {
    const existing = await store.match(file.url);
    if (existing) {
      advance(file.size);
      await store.put(file.url, existing, () => store.match(file.url));
      end(file, true);
      return;
    }
    let counted = 0; // this file's bytes so far: a second attempt starts its progress again
    const download = async () => {
      if (counted) advance(-counted);
      counted = 0;
      const response = await fetchFn(file.url, { integrity: file.integrity, cache: "no-cache" });
      if (!response.ok) throw new Error(`${file.url} answered HTTP ${response.status}`);
      const counter = new TransformStream({
        transform(chunk, controller) {
          counted += chunk.byteLength;
          advance(chunk.byteLength);
          controller.enqueue(chunk);
        },
      });
      // Stored with the headers of every response the runtime builds (the build's policy, nosniff).
      const type = response.headers.get("Content-Type") || "application/octet-stream";
      const headers = withSecurityHeaders([["Content-Type", type]], securityHeaders);
      return new Response(response.body.pipeThrough(counter), { status: 200, headers });
    };
    try {
      await store.put(file.url, await download(), download);
    } catch (error) {
      end(file, false);
      // A rejected fetch, or a body that fails mid-stream (a browser may check `integrity` as the
      // bytes arrive), is a bare TypeError whether the network failed or the bytes were wrong.
      throw error instanceof TypeError ? await fetchFailure(file.url, fetchFn, error) : error;
    }
    end(file, true);
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (queue.length) await fetchOne(queue.shift());
    }),
  );
  return loaded;
}

/**
 * A stored file's bytes read into one `Uint8Array` of `size` bytes allocated up front, so a big file
 * (the database) is held once, not as chunks plus their concatenation. Returns a view of the bytes
 * read (shorter than `size` if fewer arrived); more than `size` bytes throw `RangeError`.
 */
export async function readInto(response, size) {
  const bytes = new Uint8Array(size);
  let offset = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (offset + value.byteLength > size) {
      await reader.cancel();
      throw new RangeError(`${response.url || "a stored file"} holds more than the ${size} bytes the build recorded`);
    }
    bytes.set(value, offset);
    offset += value.byteLength;
  }
  return offset === size ? bytes : bytes.subarray(0, offset);
}

/** Whether every file of `files` is in `store` (a restarted Service Worker whose caches were evicted is not). */
export async function hasAll(store, files) {
  for (const file of files) if (!(await store.match(file.url))) return false;
  return true;
}
