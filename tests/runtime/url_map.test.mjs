// The runtime sorts and rewrites requests by the gallery origin's URL map (builder/runtime/reader/js/url-map.mjs),
// the file Python reads too (builder/url_map.py; tests/builder/test_url_map.py). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { requestKind } from "../../builder/runtime/reader/js/request-kind.mjs";
import URL_MAP from "../../builder/runtime/reader/js/url-map.mjs";
import { datasetteTarget, toEmbedURL } from "../../builder/runtime/reader/js/url-rewrite.mjs";

const ORIGIN = "http://g1.localhost:8000";
// A path under `path` if it is a prefix (ends with "/"), else `path` itself.
const example = (path) => (path.endsWith("/") ? `${path}x/y.bin` : path);

test("every path of the map's server part is left to the server, prefixes with what follows them", () => {
  for (const path of Object.values(URL_MAP.server)) assert.equal(requestKind(example(path), ORIGIN), "server", path);
  for (const path of Object.values(URL_MAP.server).filter((p) => !p.endsWith("/"))) {
    assert.equal(requestKind(`${path}/more`, ORIGIN), "app", `an exact path: ${path}/more is Datasette's`);
  }
});

test("the map's stores and static files are answered from the bundle, never by Datasette", () => {
  for (const prefix of Object.values(URL_MAP.store)) assert.equal(requestKind(example(prefix), ORIGIN), "store", prefix);
  for (const prefix of URL_MAP.static) assert.equal(requestKind(example(prefix), ORIGIN), "static", prefix);
});

test("embed mode and the runtime's parameters are the map's", () => {
  const { prefix, chrome, mode } = URL_MAP.params;
  const target = datasetteTarget(`${ORIGIN}${URL_MAP.embed}chinook?${chrome}=1&${mode}=worker&${prefix}other=1&_size=5`);
  assert.deepEqual([target.path, target.query, target.embed, target.chrome], ["/chinook", "_size=5", true, true]);
  assert.equal(toEmbedURL("/chinook", ORIGIN), `${ORIGIN}${URL_MAP.embed}chinook`);
});
