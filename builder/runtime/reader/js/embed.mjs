// Embed mode's changes to a Datasette HTML page (pure string work, unit-tested in Node):
// a compact style, Datasette's header and footer hidden unless `_glasshouse_chrome=1`, an
// "Open full view" link, and the embed client script (link rewriting and height messages).

const escapeAttr = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** CSS of every embedded page; `chrome` keeps Datasette's header (`.not-footer > header`) and footer (`footer.ft`). */
export function embedStyle(chrome) {
  const hide = chrome ? "" : ".not-footer > header, footer.ft { display: none !important; }\n";
  return (
    `<style id="glasshouse-embed-style">\n${hide}` +
    ".glasshouse-embed-bar { font: 12px/1.6 system-ui, sans-serif; text-align: right; padding: 2px 8px; }\n" +
    ".glasshouse-embed-bar a { color: inherit; opacity: .75; }\n" +
    "</style>"
  );
}

/** The "Open full view" link: a new tab (`rel=noopener`) on the normal gallery URL of the view. */
export function fullViewLink(fullView) {
  return (
    `<div class="glasshouse-embed-bar"><a href="${escapeAttr(fullView)}" target="_blank" rel="noopener" ` +
    `data-glasshouse-full-view>Open full view \u2197</a></div>`
  );
}

/**
 * `html` (a Datasette page) in embed mode. `options`: `{fullView, chrome, clientURL}`, where
 * `clientURL` is the embed client module (it rewrites links to stay in embed mode and posts
 * `glasshouse:resize` messages). Pages without `<head>` or `<body>` get the parts prepended.
 */
export function embedHTML(html, { fullView, chrome, clientURL }) {
  const head = embedStyle(chrome) + `<script type="module" src="${escapeAttr(clientURL)}"></script>`;
  const bar = fullViewLink(fullView);
  let out = insertAfterTag(html, "head", head);
  if (out === null) out = head + html;
  const withBar = insertAfterTag(out, "body", bar);
  return withBar === null ? bar + out : withBar;
}

/** `html` with `insert` placed right after the first `<tag ...>` opening tag, or `null` if there is none. */
export function insertAfterTag(html, tag, insert) {
  const match = new RegExp(`<${tag}(\\s[^>]*)?>`, "i").exec(html);
  if (!match) return null;
  const at = match.index + match[0].length;
  return html.slice(0, at) + insert + html.slice(at);
}
