// URL rewriting between the reader's address bar and Datasette: what Datasette sees of a request
// (the embed prefix and our `_glasshouse_*` parameters taken off), embed mode's links, and where
// Datasette's redirects go. Pure (URL/URLSearchParams only), so `node --test tests/runtime/` covers it.
import { requestKind } from "./request-kind.mjs";
import URL_MAP from "./url-map.mjs";

/** Embed mode: `/-/embed/<view path>?<view query>` shows `<view path>` compact (gallery/embed.py). */
export const EMBED_PREFIX = URL_MAP.embed;
/** Every query parameter with this prefix is ours; Datasette never sees it. */
export const PARAM_PREFIX = URL_MAP.params.prefix;
/** `=1` keeps Datasette's header and footer in embed mode. */
export const CHROME_PARAM = URL_MAP.params.chrome;
/** `=worker` asks for worker mode (fallback.mjs). */
export const MODE_PARAM = URL_MAP.params.mode;

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
