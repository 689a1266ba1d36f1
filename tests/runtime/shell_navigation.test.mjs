// Unit tests of worker mode's page shell decisions (builder/runtime/reader/js/navigation.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { downloadName, formRequest, linkNavigation, redirectStep, responseDisposition } from "../../builder/runtime/reader/js/navigation.mjs";

const ORIGIN = "http://g1.localhost:8000";

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

test("redirects are followed as the Fetch standard says", () => {
  const post = { url: `${ORIGIN}/data.json?sql=x`, method: "POST", headers: [["Content-Type", "text/plain"], ["accept", "*/*"]], body: "b" };
  const get = { ...post, method: "GET", body: null };
  // Datasette 1.0's /<db>.json?sql= answer: a relative Location, resolved against the request's URL.
  assert.deepEqual(redirectStep(get, { status: 302, location: "/data/-/query.json?sql=x" }), {
    ...get, url: `${ORIGIN}/data/-/query.json?sql=x`,
  });
  for (const status of [301, 302, 303]) {
    assert.deepEqual(redirectStep(post, { status, location: "/next" }), {
      url: `${ORIGIN}/next`, method: "GET", headers: [["accept", "*/*"]], body: null,
    }, `${status} after a POST becomes a GET without the body`);
  }
  for (const status of [307, 308]) {
    assert.deepEqual(redirectStep(post, { status, location: "/next" }), { ...post, url: `${ORIGIN}/next` }, `${status} keeps the POST`);
  }
  assert.equal(redirectStep({ ...post, method: "PUT" }, { status: 302, location: "/n" }).method, "PUT", "302 changes only a POST");
  assert.equal(redirectStep({ ...post, method: "PUT" }, { status: 303, location: "/n" }).method, "GET");
  assert.equal(redirectStep({ ...get, method: "HEAD" }, { status: 303, location: "/n" }).method, "HEAD");
  for (const answer of [{ status: 200, location: "/n" }, { status: 304, location: "/n" }, { status: 302, location: null }, { status: 300, location: "/n" }]) {
    assert.equal(redirectStep(get, answer), null, JSON.stringify(answer));
  }
});
