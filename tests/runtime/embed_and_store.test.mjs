// Unit tests of embed mode's page changes (embed.mjs) and of the bundle store's fallback (store.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";

import { embedHTML } from "../../builder/runtime/reader/js/embed.mjs";
import {
  IntegrityError, downloadAll, hasAll, memoryStore, openStore, readInto, verifiedResponse, waitForFile,
} from "../../builder/runtime/reader/js/store.mjs";

const PAGE = '<!DOCTYPE html><html><head><title>Album</title></head><body class="table"><div class="not-footer"><header>h</header></div><footer class="ft">f</footer></body></html>';

test("an embedded page hides Datasette's header and footer and links to the full view in a new tab", () => {
  const html = embedHTML(PAGE, { fullView: "http://g.localhost/chinook/Album?a=1&b=2", chrome: false, clientURL: "/_build/b/js/embed-client.mjs" });
  assert.match(html, /<head><style id="glasshouse-embed-style">[^<]*\.not-footer > header, footer\.ft \{ display: none/);
  assert.match(html, /<script type="module" src="\/_build\/b\/js\/embed-client\.mjs"><\/script><title>/);
  assert.match(html, /<body class="table"><div class="glasshouse-embed-bar"><a href="http:\/\/g\.localhost\/chinook\/Album\?a=1&#38;b=2" target="_blank" rel="noopener"/);
});

test("with the chrome switch the header and footer stay", () => {
  const html = embedHTML(PAGE, { fullView: "/", chrome: true, clientURL: "/c.mjs" });
  assert.doesNotMatch(html, /display: none/);
  assert.match(html, /Open full view/);
});

test("a page without head or body still gets the embed parts", () => {
  const html = embedHTML("<p>hi</p>", { fullView: "/", chrome: false, clientURL: "/c.mjs" });
  assert.ok(html.startsWith('<div class="glasshouse-embed-bar">'));
  assert.match(html, /<p>hi<\/p>$/);
});

const files = [
  { url: "/_runtime/a.wasm", size: 3, integrity: "sha256-x" },
  { url: "/_build/b/data/d.db", size: 2, integrity: "sha256-y" },
];
const fakeFetch = async (url) => new Response(url.endsWith(".wasm") ? "abc" : "de", { headers: { "Content-Type": "application/wasm" } });

test("without Cache Storage the bundle downloads into memory with progress", async () => {
  const refusing = { open: async () => { throw new DOMException("The user denied permission", "SecurityError"); } };
  const store = await openStore("glasshouse-b", refusing);
  assert.equal(store.kind, "memory");
  const progress = [];
  const securityHeaders = [["Content-Security-Policy", "default-src 'self'"], ["X-Content-Type-Options", "nosniff"]];
  const loaded = await downloadAll(store, files, { fetchFn: fakeFetch, onProgress: (n) => progress.push(n), securityHeaders });
  assert.equal(loaded, 5);
  assert.equal(progress.at(-1), 5);
  assert.ok(await hasAll(store, files));
  assert.equal(await (await store.match("http://g.localhost/_runtime/a.wasm")).text(), "abc");
  const again = await store.match("/_runtime/a.wasm");
  assert.equal(await again.text(), "abc", "each match is a fresh response");
  assert.equal(again.headers.get("content-type"), "application/wasm");
  assert.equal(again.headers.get("content-security-policy"), "default-src 'self'", "the build's headers are stored");
  assert.equal(again.headers.get("x-content-type-options"), "nosniff");
});

test("files already stored are counted and not fetched again; a failed download names the file", async () => {
  const store = memoryStore();
  await store.put("/_runtime/a.wasm", new Response("abc"));
  const fetched = [];
  await downloadAll(store, files, { fetchFn: async (url) => (fetched.push(url), fakeFetch(url)) });
  assert.deepEqual(fetched, ["/_build/b/data/d.db"]);
  const failing = async () => new Response("", { status: 404 });
  await assert.rejects(downloadAll(memoryStore(), files, { fetchFn: failing }), /\/_runtime\/a\.wasm answered HTTP 404/);
});

test("another build's cached copy is reused for immutable files only, never for static files", async () => {
  const other = new Map([["/_runtime/a.wasm", "old-runtime"], ["/-/static/app.css", "old-css"]]);
  const own = new Map();
  const fakeCache = (map) => ({
    match: async (url, options) => {
      const parsed = new URL(url, "http://x/");
      const key = options && options.ignoreSearch ? parsed.pathname : parsed.pathname + parsed.search;
      return map.has(key) ? new Response(map.get(key)) : undefined;
    },
    put: async (url, response) => map.set(new URL(url, "http://x/").pathname, await response.text()),
  });
  const cachesAPI = { open: async () => fakeCache(own), match: fakeCache(other).match };
  const store = await openStore("glasshouse-new", cachesAPI);
  assert.equal(store.kind, "cache");
  assert.equal(await (await store.match("/_runtime/a.wasm")).text(), "old-runtime");
  assert.equal(await store.match("/-/static/app.css"), undefined);
  await store.put("/-/static/app.css", new Response("new-css"));
  assert.equal(await (await store.match("/-/static/app.css?cead5a")).text(), "new-css", "Datasette's ?<hash> is ignored");
});

test("bytes that fail their integrity are refused with an IntegrityError naming the file, a network fault is not one", async () => {
  // As a browser does: `integrity` rejects with a bare TypeError; the same URL without it answers.
  const tampered = async (url, init) => {
    if (init && init.integrity) throw new TypeError("Failed to fetch");
    return new Response("tampered");
  };
  const refused = await downloadAll(memoryStore(), files, { fetchFn: tampered }).catch((error) => error);
  assert.ok(refused instanceof IntegrityError, String(refused));
  assert.match(refused.message, /failed an integrity check: \/_runtime\/a\.wasm is not the file this gallery was published with/);
  const offline = async () => { throw new TypeError("Failed to fetch"); };
  const fault = await downloadAll(memoryStore(), files, { fetchFn: offline }).catch((error) => error);
  assert.ok(!(fault instanceof IntegrityError) && fault.message === "Failed to fetch", String(fault));
});

test("a stored file is checked against the integrity Pyodide asks for", async () => {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("wheel")));
  const integrity = "sha256-" + btoa(String.fromCharCode(...digest));
  const good = await verifiedResponse(new Response("wheel"), integrity, "/_wheels/x/a.whl");
  assert.equal(await good.text(), "wheel");
  await assert.rejects(verifiedResponse(new Response("wheeL"), integrity, "/_wheels/x/a.whl"), IntegrityError);
});

/** A response whose body arrives in `chunks` (strings), then ends or, with `fail`, errors as a browser's stream does. */
const chunked = (chunks, fail = null) =>
  new Response(
    new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        if (fail) controller.error(fail);
        else controller.close();
      },
    }),
  );

test("downloads stream into Cache Storage with progress; a full cache takes the file into memory, counted once", async () => {
  const stored = new Map();
  const full = new DOMException("Quota exceeded", "QuotaExceededError");
  const cache = {
    match: async () => undefined,
    // Reads the stream as Cache Storage does; the database's put fails part-way, as over quota.
    put: async (url, response) => {
      const text = await response.text();
      if (url.endsWith(".db")) throw full;
      stored.set(url, text);
    },
  };
  const store = await openStore("glasshouse-b", { open: async () => cache, match: async () => undefined });
  const progress = [];
  const fetchFn = async (url) => chunked(url.endsWith(".db") ? ["d", "e"] : ["a", "b", "c"]);
  const loaded = await downloadAll(store, files, { fetchFn, onProgress: (n) => progress.push(n), concurrency: 1 });
  assert.equal(loaded, 5, "the database's second attempt does not count its bytes twice");
  assert.deepEqual(progress, [1, 2, 3, 4, 5, 3, 4, 5]);
  assert.equal(stored.get("/_runtime/a.wasm"), "abc");
  assert.equal(await (await store.match("/_build/b/data/d.db")).text(), "de", "kept in memory instead");
});

test("a body that fails part-way is an IntegrityError when the plain file answers, else the fault", async () => {
  const cut = (plainAnswers) => async (url, init) =>
    init && init.integrity ? chunked(["ab"], new TypeError("network error")) : plainAnswers ? new Response("abX") : Promise.reject(new TypeError("offline"));
  const tampered = await downloadAll(memoryStore(), files, { fetchFn: cut(true) }).catch((error) => error);
  assert.ok(tampered instanceof IntegrityError, String(tampered));
  const fault = await downloadAll(memoryStore(), files, { fetchFn: cut(false) }).catch((error) => error);
  assert.ok(!(fault instanceof IntegrityError) && fault.message === "network error", String(fault));
});

test("readInto reads a stored file into one buffer of the recorded size, and refuses more bytes", async () => {
  const bytes = await readInto(chunked(["ab", "cd"]), 4);
  assert.equal(new TextDecoder().decode(bytes), "abcd");
  assert.equal(bytes.buffer.byteLength, 4, "no second buffer");
  assert.equal(new TextDecoder().decode(await readInto(chunked(["ab"]), 4)), "ab");
  await assert.rejects(readInto(chunked(["abc", "de"]), 4), RangeError);
});

test("with `inflight` a file can be waited for alone while later files still download", async () => {
  const inflight = new Map();
  let releaseDatabase;
  const databaseHeld = new Promise((resolve) => (releaseDatabase = resolve));
  const slowDatabase = async (url) => (url.endsWith(".db") ? (await databaseHeld, fakeFetch(url)) : fakeFetch(url));
  const store = memoryStore();
  const all = downloadAll(store, files, { fetchFn: slowDatabase, inflight });
  assert.deepEqual([...inflight.keys()], ["/_runtime/a.wasm", "/_build/b/data/d.db"], "every file is listed before any download ends");
  await waitForFile(inflight, "http://g.localhost/_runtime/a.wasm");
  assert.equal(await (await store.match("/_runtime/a.wasm")).text(), "abc", "the waited-for file is stored");
  assert.equal(await store.match("/_build/b/data/d.db"), undefined, "the database is still on its way");
  let databaseWaited = false;
  const databaseWait = waitForFile(inflight, "/_build/b/data/d.db").then(() => (databaseWaited = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(databaseWaited, false);
  releaseDatabase();
  await databaseWait;
  assert.equal(await (await store.match("/_build/b/data/d.db")).text(), "de");
  await all;
  await waitForFile(inflight, "/not/in/the/bundle.js"); // resolves at once
});

test("a file whose download failed, or that the stopped queue never reached, is never waited for in vain", async () => {
  const inflight = new Map();
  const failing = async (url) => (url.endsWith(".wasm") ? new Response("", { status: 500 }) : fakeFetch(url));
  await assert.rejects(downloadAll(memoryStore(), files, { fetchFn: failing, concurrency: 1, inflight }), /answered HTTP 500/);
  await assert.rejects(waitForFile(inflight, "/_runtime/a.wasm"), /\/_runtime\/a\.wasm could not be downloaded/);
  await assert.rejects(waitForFile(inflight, "/_build/b/data/d.db"), /could not be downloaded/, "never reached: one worker, stopped by the first failure");
});
