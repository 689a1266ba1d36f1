// Pure URL and response logic shared by the Service Worker, the Worker and the page shell.
// No browser APIs beyond URL/URLSearchParams, so `node --test tests/runtime/` covers all of it.

/** Paths served from the bundle's stores (runtime, wheels, this build's files): never Datasette. */
export const STORE_PREFIXES = ["/_runtime/", "/_wheels/", "/_build/"];
/**
 * Paths only the server answers, never Datasette: the Service Worker itself, robots rules, the
 * footer's "Report" link (a redirect to the app's report form; glasshouse_report.py), self-host zips.
 */
export const SERVER_PATHS = ["/sw.js", "/robots.txt", "/_report"];
export const SERVER_PREFIXES = ["/_download/"];
/** Datasette's and the plugins' static files, written into the bundle at build time. */
export const STATIC_PREFIXES = ["/-/static/", "/-/static-plugins/"];
/** Embed mode: `/-/embed/<view path>?<view query>` shows `<view path>` compact (gallery/embed.py). */
export const EMBED_PREFIX = "/-/embed/";
/** Every query parameter with this prefix is ours; Datasette never sees it. */
export const PARAM_PREFIX = "_glasshouse_";
export const CHROME_PARAM = "_glasshouse_chrome";
export const MODE_PARAM = "_glasshouse_mode";
export const RESIZE_MESSAGE = "glasshouse:resize";
/** Sent by the article page's /embed.js when it starts late: the embed answers with its height. */
export const MEASURE_MESSAGE = "glasshouse:measure";

const startsWithAny = (path, prefixes) => prefixes.some((prefix) => path.startsWith(prefix));

/**
 * What a request for `url` (a URL or string) is, seen from the gallery origin `origin`:
 * "foreign" (another origin), "server" (`SERVER_PATHS`, `SERVER_PREFIXES`: always the network), "store" (immutable
 * bundle files), "static" (Datasette's static files, real files on the server), or "app"
 * (a Datasette page or API answered inside the browser).
 */
export function requestKind(url, origin) {
  const parsed = new URL(url, origin);
  if (parsed.origin !== new URL(origin).origin) return "foreign";
  if (SERVER_PATHS.includes(parsed.pathname) || startsWithAny(parsed.pathname, SERVER_PREFIXES)) return "server";
  if (startsWithAny(parsed.pathname, STORE_PREFIXES)) return "store";
  if (startsWithAny(parsed.pathname, STATIC_PREFIXES)) return "static";
  return "app";
}

/** Whether `url` is in embed mode (its path starts with `/-/embed/`). */
export function isEmbedURL(url) {
  return new URL(url, "http://x/").pathname.startsWith(EMBED_PREFIX);
}

/**
 * Split a request URL into what Datasette sees and what is ours.
 * Returns `{path, query, embed, chrome, fullView}`: `path` percent-encoded as in the URL, the embed
 * prefix removed; `query` without `?` and without any `_glasshouse_*` parameter; `embed` and
 * `chrome` booleans; `fullView` the absolute URL of the same view outside embed mode.
 */
export function datasetteTarget(url) {
  const parsed = new URL(url);
  const embed = parsed.pathname.startsWith(EMBED_PREFIX);
  const path = embed ? "/" + parsed.pathname.slice(EMBED_PREFIX.length) : parsed.pathname;
  const chrome = parsed.searchParams.get(CHROME_PARAM) === "1";
  const query = stripParams(parsed.search);
  return { path, query, embed, chrome, fullView: `${parsed.origin}${path}${query ? "?" + query : ""}` };
}

/** `search` (with or without `?`) minus every `_glasshouse_*` parameter, without `?`; other bytes kept as sent. */
export function stripParams(search) {
  const text = search.startsWith("?") ? search.slice(1) : search;
  if (!text) return "";
  return text
    .split("&")
    .filter((pair) => pair && !decodeURIComponent(pair.split("=")[0].replace(/\+/g, " ")).startsWith(PARAM_PREFIX))
    .join("&");
}

/**
 * The embed-mode URL of `href` (resolved against `base`), keeping `_glasshouse_chrome=1` when
 * `chrome`; `null` for what must not be rewritten (other origins, bundle and static files,
 * URLs already in embed mode, `/sw.js`).
 */
export function toEmbedURL(href, base, { chrome = false } = {}) {
  const url = new URL(href, base);
  if (requestKind(url, base) !== "app" || url.pathname.startsWith(EMBED_PREFIX)) return null;
  url.pathname = EMBED_PREFIX + url.pathname.slice(1);
  if (chrome) url.searchParams.set(CHROME_PARAM, "1");
  return url.href;
}

/**
 * Where a redirect from Datasette should go: `location` resolved against the request URL;
 * in embed mode a same-origin app path stays in embed mode.
 */
export function redirectTarget(location, requestURL) {
  const target = new URL(location, requestURL).href;
  if (!isEmbedURL(requestURL)) return target;
  const chrome = new URL(requestURL).searchParams.get(CHROME_PARAM) === "1";
  return toEmbedURL(target, requestURL, { chrome }) || target;
}

/**
 * `headers` (`[[name, value], ...]`) plus `securityHeaders`, the build's headers for every response
 * the Service Worker or the Worker builds (config.mjs `securityHeaders`, computed by builder/csp.py:
 * Content-Security-Policy, X-Content-Type-Options, Referrer-Policy). Datasette's own values of those
 * headers are dropped, except a Content-Security-Policy of its own, which stays beside ours (a
 * second policy can only forbid more).
 */
export function withSecurityHeaders(headers, securityHeaders) {
  const ours = new Set(securityHeaders.map(([name]) => name.toLowerCase()));
  ours.delete("content-security-policy");
  return [...headers.filter(([name]) => !ours.has(name.toLowerCase())), ...securityHeaders];
}

/**
 * Whether the page shell should take over a link click, and where to: the absolute URL, or
 * `null` to let the browser do its default (modifier keys, other buttons, `target` other than
 * `_self`, `download`, other origins, bundle files, or a jump within the current page).
 * `click`: `{href, button, ctrlKey, metaKey, shiftKey, altKey, target, download, defaultPrevented}`.
 */
export function linkNavigation(click, currentURL) {
  if (click.defaultPrevented || click.button !== 0) return null;
  if (click.ctrlKey || click.metaKey || click.shiftKey || click.altKey) return null;
  if (click.target && click.target.toLowerCase() !== "_self") return null;
  if (click.download !== null && click.download !== undefined) return null;
  if (!click.href) return null;
  const url = new URL(click.href, currentURL);
  if (requestKind(url, currentURL) !== "app") return null;
  const here = new URL(currentURL);
  if (url.hash && url.pathname === here.pathname && url.search === here.search) return null;
  return url.href;
}

/**
 * The request a form submission makes: `{method, url, body, contentType}` (body a string or
 * null). `form`: `{action, method, enctype, entries: [[name, value], ...]}` with string values;
 * GET replaces the action's query with the entries, as browsers do.
 */
export function formRequest(form, currentURL) {
  const method = (form.method || "GET").toUpperCase() === "POST" ? "POST" : "GET";
  const url = new URL(form.action || currentURL, currentURL);
  url.hash = "";
  const params = new URLSearchParams();
  for (const [name, value] of form.entries) params.append(name, value);
  if (method === "GET") {
    url.search = params.toString();
    return { method, url: url.href, body: null, contentType: null };
  }
  return { method, url: url.href, body: params.toString(), contentType: "application/x-www-form-urlencoded" };
}

/**
 * How the page shell shows an answer: "redirect" (3xx with a location), "render" (HTML, in a
 * fresh frame), "download" (an attachment, `?_dl=1`, or a type a page cannot show), or "text"
 * (JSON, CSV and other text, shown as plain text).
 * `answer`: `{url, status, contentType, contentDisposition}`.
 */
export function responseDisposition(answer) {
  if (answer.status >= 300 && answer.status < 400 && answer.location) return "redirect";
  const type = (answer.contentType || "").toLowerCase();
  const url = new URL(answer.url);
  if (/^\s*attachment/i.test(answer.contentDisposition || "") || url.searchParams.get("_dl")) return "download";
  if (type.startsWith("text/html") || type.startsWith("application/xhtml")) return "render";
  if (type.startsWith("text/") || type.includes("json") || type.includes("xml") || !type) return "text";
  return "download";
}

/** The file name for a download: from `Content-Disposition`, else the URL's last path segment, else "download". */
export function downloadName(url, contentDisposition) {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(contentDisposition || "");
  if (match) return decodeURIComponent(match[1]);
  const last = new URL(url).pathname.split("/").filter(Boolean).pop();
  return last ? decodeURIComponent(last) : "download";
}

/**
 * Which mode the bootstrap page should run in now: "service-worker" (keep waiting on it),
 * "worker" (switch to worker mode) or "wait". `state`: `{forced, hasServiceWorker, registerFailed,
 * workerRedundant, controlled, progressSeen, elapsedMs, timeoutMs}`. A Service Worker that has
 * reported progress is never abandoned for being slow.
 */
export function decideMode(state) {
  if (state.forced || !state.hasServiceWorker || state.registerFailed) return "worker";
  if (state.controlled) return "service-worker";
  if (state.workerRedundant) return "worker";
  if (state.progressSeen) return "service-worker";
  return state.elapsedMs >= state.timeoutMs ? "worker" : "wait";
}
