// The gallery origin's URL map: every path the server answers apart from Datasette's pages, and the
// query parameters that are the runtime's own. This file is the map's one home. The browser runtime
// imports it (request-kind.mjs, url-rewrite.mjs, bootstrap.mjs); Python reads the same object
// (builder/url_map.py) for the content origin's routes (gallery.content), the bundle's layout
// (builder.bundle) and embed URLs (gallery.embed).
//
// A path ending in "/" is a prefix, any other an exact path. `server`: answered by the server,
// never by the runtime (the Service Worker script, robots rules, the "Report" link's redirect, the
// self-host zip, the web app manifest that makes a gallery installable). `store`: immutable bundle files (the shared Pyodide runtime, wheels, a build's own
// files). `static`: Datasette's and the plugins' static files, real files of the build. `embed`:
// embed mode, `/-/embed/<view path>` (gallery/embed.py). `params`: every query parameter starting
// with `prefix` is the runtime's and never reaches Datasette; `chrome=1` keeps Datasette's header
// and footer in embed mode, `mode=worker` asks for worker mode.
//
// Keep the object strict JSON (double quotes, no comments or trailing commas inside it): Python
// parses it with json.loads.
export default {
  "server": { "serviceWorker": "/sw.js", "robots": "/robots.txt", "report": "/_report", "download": "/_download/", "webAppManifest": "/manifest.webmanifest" },
  "store": { "runtime": "/_runtime/", "wheels": "/_wheels/", "build": "/_build/" },
  "static": ["/-/static/", "/-/static-plugins/"],
  "embed": "/-/embed/",
  "params": { "prefix": "_glasshouse_", "chrome": "_glasshouse_chrome", "mode": "_glasshouse_mode" }
};
