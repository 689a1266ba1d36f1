// Unit tests of the runtime's pure URL logic (builder/runtime/reader/js/: request-kind.mjs, url-rewrite.mjs)
// and of the headers it stamps (security-headers.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { requestKind } from "../../builder/runtime/reader/js/request-kind.mjs";
import { withSecurityHeaders } from "../../builder/runtime/reader/js/security-headers.mjs";
import { datasetteTarget, redirectTarget, stripParams, toEmbedURL } from "../../builder/runtime/reader/js/url-rewrite.mjs";

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
    "/manifest.webmanifest": "server",
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
