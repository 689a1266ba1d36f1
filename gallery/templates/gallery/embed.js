// Glasshouse embeds: make each <iframe data-glasshouse-embed> follow its content's height.
// The embedded gallery posts {type: "{{ resize_message }}", height: <CSS px>} to its parent;
// only messages from a gallery origin, sent by the very frame being sized, are applied.
(() => {
  "use strict";
  if (window.__glasshouseEmbedSizer) return;  // the snippet may appear several times on a page
  window.__glasshouseEmbedSizer = true;
  const galleryOrigin = new RegExp({{ origin_pattern_json|safe }});
  const maxHeight = {{ max_height }};

  function frameOf(source, origin) {
    for (const frame of document.querySelectorAll("iframe[data-glasshouse-embed]")) {
      if (frame.contentWindow !== source) continue;
      try {
        return new URL(frame.src, location.href).origin === origin ? frame : null;
      } catch {
        return null;
      }
    }
    return null;
  }

  window.addEventListener("message", (event) => {
    if (typeof event.origin !== "string" || !galleryOrigin.test(event.origin)) return;
    const data = event.data;
    if (data === null || typeof data !== "object" || data.type !== "{{ resize_message }}") return;
    const height = data.height;
    if (!Number.isInteger(height) || height < 1 || height > maxHeight) return;
    const frame = frameOf(event.source, event.origin);
    if (!frame) return;
    frame.style.height = height + "px";
    frame.setAttribute("height", String(height));
  });

  // Embeds that posted their height before this script arrived are asked again.
  for (const frame of document.querySelectorAll("iframe[data-glasshouse-embed]")) {
    let origin;
    try {
      origin = new URL(frame.src, location.href).origin;
    } catch {
      continue;
    }
    if (galleryOrigin.test(origin) && frame.contentWindow) {
      frame.contentWindow.postMessage({ type: "{{ measure_message }}" }, origin);
    }
  }
})();
