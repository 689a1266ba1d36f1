// Unit tests of the runtime's pure URL logic (builder/runtime/reader/js/routes.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  datasetteTarget, decideMode, downloadName, formRequest, linkNavigation, redirectTarget, requestKind,
  responseDisposition, stripParams, toEmbedURL, withSecurityHeaders,
} from "../../builder/runtime/reader/js/routes.mjs";

const ORIGIN = "http://g1.localhost:8000";

test("requests are sorted into store files, static files, the worker script, app pages and other origins", () => {
  const cases = {
    "/_runtime/pyodide-0.0.1/pyodide.mjs": "store",
    "/_wheels/ab/x.whl": "store",
    "/_build/b1/js/core.mjs": "store",
    "/-/static/app.css": "static",
    "/-/static-plugins/datasette-cluster-map/datasette-cluster-map.js": "static",
    "/sw.js": "server",
    "/robots.txt": "server",
    "/_download/0123456789abcdef.zip": "server",
    "/_report?url=%2Fchinook%2FAlbum": "server",
    "/_report/elsewhere": "app",
    "/": "app",
    "/chinook/Album.json?_shape=array": "app",
    "/-/embed/chinook/Album": "app",
    "/-/versions": "app",
    "http://other.localhost:8000/chinook": "foreign",
    "https://tile.openstreetmap.org/1/1/1.png": "foreign",
  };
  for (const [url, kind] of Object.entries(cases)) assert.equal(requestKind(url, ORIGIN), kind, url);
});

test("glasshouse parameters never reach Datasette and other bytes stay as sent", () => {
  assert.equal(stripParams("?_glasshouse_mode=worker&_sort=Title&_glasshouse_chrome=1"), "_sort=Title");
  assert.equal(stripParams("sql=select+1%3B&_size=2"), "sql=select+1%3B&_size=2");
  assert.equal(stripParams(""), "");
  assert.equal(stripParams("?%5Fglasshouse%5Fmode=worker&a=1"), "a=1");
});

test("an embed URL is answered with its view's path and a full view link without our parameters", () => {
  const target = datasetteTarget(`${ORIGIN}/-/embed/chinook/Album?_sort=Title&_glasshouse_chrome=1`);
  assert.deepEqual(target, {
    path: "/chinook/Album", query: "_sort=Title", embed: true, chrome: true, fullView: `${ORIGIN}/chinook/Album?_sort=Title`,
  });
  const plain = datasetteTarget(`${ORIGIN}/datasette-fixtures/table~2Fwith~2Fslashes~2Ecsv?_glasshouse_mode=worker`);
  assert.equal(plain.path, "/datasette-fixtures/table~2Fwith~2Fslashes~2Ecsv");
  assert.equal(plain.query, "");
  assert.equal(plain.embed, false);
  assert.equal(datasetteTarget(`${ORIGIN}/-/embed/`).path, "/");
});

test("links inside an embed stay in embed mode, keeping the chrome switch", () => {
  const here = `${ORIGIN}/-/embed/chinook/Album`;
  assert.equal(toEmbedURL("/chinook/Track?GenreId=1", here), `${ORIGIN}/-/embed/chinook/Track?GenreId=1`);
  assert.equal(toEmbedURL("?_sort=Title", here), null, "already in embed mode");
  assert.equal(toEmbedURL("/chinook", here, { chrome: true }), `${ORIGIN}/-/embed/chinook?_glasshouse_chrome=1`);
  assert.equal(toEmbedURL("/-/static/app.css", here), null);
  assert.equal(toEmbedURL("/_report?url=%2Fchinook%2FAlbum", here), null, "the footer's Report link goes to the server");
  assert.equal(toEmbedURL("https://example.com/", here), null);
});

test("a redirect from Datasette stays in embed mode only when the request was an embed", () => {
  assert.equal(redirectTarget("/chinook/Album?_sort=x", `${ORIGIN}/-/embed/chinook/Album`), `${ORIGIN}/-/embed/chinook/Album?_sort=x`);
  assert.equal(redirectTarget("/chinook/Album?_sort=x", `${ORIGIN}/chinook/Album`), `${ORIGIN}/chinook/Album?_sort=x`);
  assert.equal(
    redirectTarget("/chinook", `${ORIGIN}/-/embed/x?_glasshouse_chrome=1`),
    `${ORIGIN}/-/embed/chinook?_glasshouse_chrome=1`,
  );
});

test("every built response carries the build's security headers, which replace Datasette's own", () => {
  const ours = [["Content-Security-Policy", "default-src 'self'; frame-ancestors *"], ["X-Content-Type-Options", "nosniff"],
    ["Referrer-Policy", "no-referrer"]];
  assert.deepEqual(withSecurityHeaders([["content-type", "text/html"]], ours), [["content-type", "text/html"], ...ours]);
  const upstream = [["content-security-policy", "img-src 'none'"], ["x-content-type-options", "x"], ["referrer-policy", "unsafe-url"]];
  // A policy of Datasette's own stays beside ours (both apply); the other two are ours alone.
  assert.deepEqual(withSecurityHeaders(upstream, ours), [["content-security-policy", "img-src 'none'"], ...ours]);
});

test("the shell takes over plain same-origin link clicks only", () => {
  const here = `${ORIGIN}/chinook`;
  const click = { href: `${ORIGIN}/chinook/Album`, button: 0, target: "", download: null, defaultPrevented: false };
  assert.equal(linkNavigation(click, here), `${ORIGIN}/chinook/Album`);
  for (const change of [
    { ctrlKey: true }, { metaKey: true }, { shiftKey: true }, { altKey: true }, { button: 1 }, { target: "_blank" },
    { download: "" }, { defaultPrevented: true }, { href: "https://example.com/" }, { href: `${ORIGIN}/-/static/app.css` },
    { href: `${ORIGIN}/chinook#tables` }, { href: `${ORIGIN}/_report?url=%2Fchinook` },
  ]) {
    assert.equal(linkNavigation({ ...click, ...change }, here), null, JSON.stringify(change));
  }
  assert.equal(linkNavigation({ ...click, target: "_self" }, here), `${ORIGIN}/chinook/Album`);
});

test("form submissions become GET URLs or urlencoded POST bodies", () => {
  const here = `${ORIGIN}/chinook?x=1`;
  assert.deepEqual(formRequest({ action: `${ORIGIN}/chinook?old=1`, method: "get", entries: [["sql", "select 1 & 2"]] }, here), {
    method: "GET", url: `${ORIGIN}/chinook?sql=select+1+%26+2`, body: null, contentType: null,
  });
  assert.deepEqual(formRequest({ action: "", method: "POST", entries: [["a", "b"], ["a", "c"]] }, here), {
    method: "POST", url: here, body: "a=b&a=c", contentType: "application/x-www-form-urlencoded",
  });
});

test("answers are rendered, shown as text, downloaded or followed", () => {
  const answer = (url, contentType, extra = {}) => responseDisposition({ url: ORIGIN + url, status: 200, contentType, ...extra });
  assert.equal(answer("/chinook/Album", "text/html; charset=utf-8"), "render");
  assert.equal(answer("/chinook/Album.json", "application/json; charset=utf-8"), "text");
  assert.equal(answer("/chinook/Album.csv", "text/plain; charset=utf-8"), "text");
  assert.equal(answer("/chinook/Album.csv?_dl=1", "text/csv; charset=utf-8"), "download");
  assert.equal(answer("/x", "text/csv", { contentDisposition: 'attachment; filename="Album.csv"' }), "download");
  assert.equal(answer("/chinook.db", "application/octet-stream"), "download");
  assert.equal(answer("/x", "text/html", { status: 302, location: "/y" }), "redirect");
  assert.equal(downloadName(`${ORIGIN}/chinook/Album.csv?_dl=1`, 'attachment; filename="Album.csv"'), "Album.csv");
  assert.equal(downloadName(`${ORIGIN}/chinook/Album.csv?_dl=1`, null), "Album.csv");
});

test("worker mode starts when no Service Worker can run, but never abandons one that is working", () => {
  const base = {
    forced: false, hasServiceWorker: true, registerFailed: false, workerRedundant: false, controlled: false,
    progressSeen: false, elapsedMs: 0, timeoutMs: 4000,
  };
  assert.equal(decideMode(base), "wait");
  assert.equal(decideMode({ ...base, forced: true }), "worker");
  assert.equal(decideMode({ ...base, hasServiceWorker: false }), "worker");
  assert.equal(decideMode({ ...base, registerFailed: true }), "worker");
  assert.equal(decideMode({ ...base, workerRedundant: true }), "worker");
  assert.equal(decideMode({ ...base, elapsedMs: 4000 }), "worker");
  assert.equal(decideMode({ ...base, elapsedMs: 60000, progressSeen: true }), "service-worker");
  assert.equal(decideMode({ ...base, elapsedMs: 60000, controlled: true }), "service-worker");
});
