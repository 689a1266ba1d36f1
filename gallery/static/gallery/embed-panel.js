// The gallery page's embed panel: asks the server for the snippet of the chosen view, previews it, copies.
(() => {
  "use strict";
  const form = document.getElementById("embed-form");
  const snippet = document.getElementById("embed-snippet");
  const preview = document.getElementById("embed-preview");
  const errors = document.getElementById("embed-errors");

  function chosen(name) {
    const box = form.querySelector(`input[name="${name}"]:checked`);
    return box ? box.value : "";
  }

  function panelQuery() {
    const params = new URLSearchParams();
    const show = chosen("show");
    params.set("show", show);
    if (show === "table") params.set("table", form.elements.table.value);
    if (show === "query") {
      const query = form.elements.query.value;
      params.set("query", query);
      for (const input of form.querySelectorAll(`input[data-query]`)) {
        if (input.dataset.query === query) params.set(input.name, input.value);
      }
    }
    if (show === "url") params.set("url", form.elements.url.value);
    params.set("height", form.elements.height.value);
    if (chosen("sizing") === "fit") params.set("fit", "1");
    if (form.elements.chrome.checked) params.set("chrome", "1");
    params.set("version", chosen("version"));
    return params;
  }

  function showParams() {
    const query = form.elements.query ? form.elements.query.value : null;
    for (const box of form.querySelectorAll(".query-params")) box.hidden = box.dataset.query !== query;
  }

  let pending = 0;
  async function refresh() {
    showParams();
    const ticket = ++pending;
    let data;
    try {
      const response = await fetch(form.dataset.endpoint + "?" + panelQuery(), { headers: { Accept: "application/json" } });
      data = await response.json();
    } catch (error) {
      data = { error: "Could not reach the server to make the code. Check your connection and change an option to try again." };
    }
    if (ticket !== pending) return;  // a newer choice is on its way
    errors.replaceChildren();
    if (data.error) {
      const item = document.createElement("li");
      item.textContent = data.error;
      errors.append(item);
      return;
    }
    snippet.value = data.snippet;
    if (preview.src !== data.embed_url) preview.src = data.embed_url;
    preview.style.height = data.height + "px";
    preview.setAttribute("height", String(data.height));
  }

  let timer;
  const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 250); };
  form.addEventListener("change", later);
  form.addEventListener("input", later);
  form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  // Choosing a table, query or address also chooses that kind of view.
  for (const [name, kind] of [["table", "table"], ["query", "query"], ["url", "url"]]) {
    const field = form.elements[name];
    if (!field) continue;
    field.addEventListener("focus", () => { form.querySelector(`input[name="show"][value="${kind}"]`).checked = true; });
    field.addEventListener("change", () => { form.querySelector(`input[name="show"][value="${kind}"]`).checked = true; });
  }
  showParams();

  // The Clipboard API needs this document to have focus, which an embedded gallery may take:
  // if it has not answered within a second, copy the selected text the old way.
  const clipboardWrite = (text) => Promise.race([
    navigator.clipboard ? navigator.clipboard.writeText(text).then(() => true, () => false) : Promise.resolve(false),
    new Promise((resolve) => setTimeout(() => resolve(false), 1000)),
  ]);
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const status = button.parentElement.querySelector(".copy-status");
      source.focus();
      source.select();
      let copied = await clipboardWrite(source.value);
      if (!copied) {
        source.focus();
        source.select();
        copied = document.execCommand("copy");
      }
      status.textContent = copied ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
    });
  }
})();
