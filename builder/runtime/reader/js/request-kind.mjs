// Which requests of a gallery origin the runtime answers, and from where: the decision the Service
// Worker's `fetch` handler, the runtime core's `fetch` wrapper and worker mode's shell all make.
// Pure (URL only), so `node --test tests/runtime/` covers it.

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
