// Runs in every embedded page (added by embed.mjs): links and forms stay in embed mode, and the
// page posts {type: "glasshouse:resize", height} to its parent whenever its content height changes.
// In worker mode the parent is the page shell, which sizes its frame and passes the message on.
import { MEASURE_MESSAGE, RESIZE_MESSAGE } from "./messages.mjs";
import { CHROME_PARAM, toEmbedURL } from "./url-rewrite.mjs";

const chrome = new URL(location.href).searchParams.get(CHROME_PARAM) === "1";

function rewrite(root) {
  for (const link of root.querySelectorAll("a[href]:not([data-glasshouse-full-view])")) {
    if (link.target && link.target !== "_self") continue;
    const embedded = toEmbedURL(link.getAttribute("href"), location.href, { chrome });
    if (embedded) link.href = embedded;
  }
  for (const form of root.querySelectorAll("form")) {
    const embedded = toEmbedURL(form.getAttribute("action") || location.href, location.href, { chrome });
    if (embedded) form.action = embedded;
    if (chrome && (form.method || "get").toLowerCase() === "get" && !form.querySelector(`[name=${CHROME_PARAM}]`)) {
      form.insertAdjacentHTML("beforeend", `<input type="hidden" name="${CHROME_PARAM}" value="1">`);
    }
  }
}

function contentHeight() {
  const body = document.body;
  const margin = parseFloat(getComputedStyle(body).marginBottom) || 0;
  return Math.ceil(body.getBoundingClientRect().bottom + window.scrollY + margin);
}

let lastHeight = -1;
function postHeight() {
  const height = contentHeight();
  if (height === lastHeight || window.parent === window) return;
  lastHeight = height;
  window.parent.postMessage({ type: RESIZE_MESSAGE, height }, "*");
}

rewrite(document);
// Scripts add links and rows later (column menus, plugins): keep rewriting what appears.
new MutationObserver((records) => {
  for (const record of records) for (const node of record.addedNodes) if (node.querySelectorAll) rewrite(node.parentNode || node);
}).observe(document.body, { childList: true, subtree: true });
new ResizeObserver(postHeight).observe(document.body);
window.addEventListener("load", postHeight);
// An article page whose /embed.js arrived after our last message asks again.
window.addEventListener("message", (event) => {
  if (event.source !== window.parent || !event.data || event.data.type !== MEASURE_MESSAGE) return;
  lastHeight = -1;
  postHeight();
});
postHeight();
