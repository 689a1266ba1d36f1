// Unit tests of the web app manifest's tags on the pages the Service Worker answers
// (web-app-manifest.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { requestKind } from "../../builder/runtime/reader/js/request-kind.mjs";
import URL_MAP from "../../builder/runtime/reader/js/url-map.mjs";
import { webAppManifestTags, withWebAppManifest } from "../../builder/runtime/reader/js/web-app-manifest.mjs";

const MANIFEST = { url: "/manifest.webmanifest", themeColor: "#2358c9" };

test("a page gets the manifest's link and theme colour at the start of its head", () => {
  assert.equal(
    withWebAppManifest('<!doctype html><html><head lang="en"><title>t</title></head><body></body></html>', MANIFEST),
    '<!doctype html><html><head lang="en"><link rel="manifest" href="/manifest.webmanifest">' +
      '<meta name="theme-color" content="#2358c9"><title>t</title></head><body></body></html>',
  );
  assert.ok(withWebAppManifest("<p>no head</p>", MANIFEST).startsWith('<link rel="manifest" href="/manifest.webmanifest">'));
});

test("a build without a web app manifest leaves pages as they are", () => {
  const page = "<html><head><title>t</title></head></html>";
  assert.equal(withWebAppManifest(page, null), page);
  assert.equal(withWebAppManifest(page, undefined), page);
});

test("the tags' values cannot leave their attributes", () => {
  const tags = webAppManifestTags({ url: '/x"><script>alert(1)</script>', themeColor: "'red'" });
  assert.ok(!tags.includes("<script>"), tags);
  assert.match(tags, /href="\/x&#34;&#62;&#60;script&#62;/);
  assert.match(tags, /content="&#39;red&#39;"/);
});

test("the manifest's URL is the server's, never Datasette's", () => {
  assert.equal(URL_MAP.server.webAppManifest, "/manifest.webmanifest");
  assert.equal(requestKind("/manifest.webmanifest", "http://g1.localhost:8000"), "server");
});
