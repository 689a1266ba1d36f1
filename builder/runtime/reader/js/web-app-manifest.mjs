// The web app manifest's tags on the pages the Service Worker answers: `<link rel="manifest">` and
// `<meta name="theme-color">`, so a reader can install the gallery as an app from any of its pages
// (a browser reads the manifest of the top-level page it shows). The build writes the manifest
// (builder/web_app_manifest.py) and says where it is in config.mjs's `webAppManifest`
// (`{url, themeColor}`, or null for a build without one); the bootstrap page carries the same tags
// from the build, and in worker mode it stays the top-level page, so its tags are the ones that count.
import { insertAfterTag } from "./embed.mjs";

const escapeAttr = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The two tags for `manifest` (`{url, themeColor}`), attribute values escaped. */
export function webAppManifestTags({ url, themeColor }) {
  return `<link rel="manifest" href="${escapeAttr(url)}"><meta name="theme-color" content="${escapeAttr(themeColor)}">`;
}

/**
 * `html` (a page) with the web app manifest's tags at the start of `<head>` (or prepended, for a page
 * without one); `html` itself when `manifest` is null (a build without a web app manifest).
 */
export function withWebAppManifest(html, manifest) {
  if (!manifest) return html;
  const tags = webAppManifestTags(manifest);
  return insertAfterTag(html, "head", tags) ?? tags + html;
}
