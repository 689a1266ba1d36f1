// Which requests of a gallery origin the runtime answers, and from where: the decision the Service
// Worker's `fetch` handler, the runtime core's `fetch` wrapper and worker mode's shell all make.
// Pure (URL only), so `node --test tests/runtime/` covers it. The paths come from url-map.mjs.
import URL_MAP from "./url-map.mjs";

const isPrefix = (path) => path.endsWith("/");
/** Paths served from the bundle's stores (runtime, wheels, this build's files): never Datasette. */
export const STORE_PREFIXES = Object.values(URL_MAP.store);
/**
 * Paths only the server answers, never Datasette: the Service Worker itself, robots rules, the
 * footer's "Report" link (a redirect to the app's report form; glasshouse_report.py), self-host zips.
 */
export const SERVER_PATHS = Object.values(URL_MAP.server).filter((path) => !isPrefix(path));
export const SERVER_PREFIXES = Object.values(URL_MAP.server).filter(isPrefix);
/** Datasette's and the plugins' static files, written into the bundle at build time. */
export const STATIC_PREFIXES = URL_MAP.static;

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
