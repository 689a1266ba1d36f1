// Worker mode's page shell, its decisions (shell.mjs acts on them): which link clicks and form
// submissions it takes over, the request a form makes, and how an answer is shown. Pure (plain
// values in and out), so `node --test tests/runtime/` covers it.
import { requestKind } from "./request-kind.mjs";

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

/** Redirects a request may follow before it fails, as the Fetch standard sets. */
export const MAX_REDIRECTS = 20;

/** Request headers that describe a body: dropped when a redirect turns the request into a GET. */
const BODY_HEADERS = ["content-encoding", "content-language", "content-location", "content-type"];

/**
 * The next request of a redirect chain, following the Fetch standard's "HTTP-redirect fetch", or
 * `null` when `answer` is no redirect (a 301, 302, 303, 307 or 308 with a `Location`).
 * `request`: `{url, method, headers: [[name, value], ...], body}`; `answer`: `{status, location}`.
 * A 301 or 302 after a POST, and a 303 after anything but GET or HEAD, become a GET without the
 * body or its headers; 307 and 308 keep the method and body. The location resolves against the
 * request's URL.
 */
export function redirectStep(request, answer) {
  if (![301, 302, 303, 307, 308].includes(answer.status) || !answer.location) return null;
  const url = new URL(answer.location, request.url).href;
  const method = request.method.toUpperCase();
  const toGet = ([301, 302].includes(answer.status) && method === "POST") || (answer.status === 303 && !["GET", "HEAD"].includes(method));
  if (!toGet) return { ...request, url };
  const headers = request.headers.filter(([name]) => !BODY_HEADERS.includes(name.toLowerCase()));
  return { url, method: "GET", headers, body: null };
}
