// Worker mode's page shell: where no Service Worker can run, the bootstrap page becomes a shell
// around a dedicated Worker (worker-main.mjs). It takes over same-origin navigation (links, forms,
// history), keeps the address bar in step with pushState, renders each HTML answer into a fresh
// same-origin frame with document.open/write/close (so scripts run and top-level `let`/`const` of
// one page never meet the next page's), and answers that frame's fetch and XMLHttpRequest for app
// paths through the Worker.
import { MEASURE_MESSAGE, RESIZE_MESSAGE } from "./messages.mjs";
import { MAX_REDIRECTS, downloadName, formRequest, linkNavigation, redirectStep, responseDisposition } from "./navigation.mjs";
import { requestKind } from "./request-kind.mjs";
import { EMBED_PREFIX } from "./url-rewrite.mjs";

/** A client for the Worker: `request({method, url, headers, body})` resolves to `{status, headers, body}`. */
export function workerClient(worker, onEvent) {
  const pending = new Map();
  let next = 1;
  worker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === "response" && pending.has(data.id)) {
      pending.get(data.id)(data.response);
      pending.delete(data.id);
    } else {
      onEvent(data);
    }
  });
  return {
    request(request) {
      const id = next++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        worker.postMessage({ type: "request", id, request });
      });
    },
  };
}

const header = (headers, name) => (headers.find(([key]) => key.toLowerCase() === name) || [, null])[1];

/**
 * Start the shell on this page. `client`: a `workerClient`; `onFirstPage()` is called once the first
 * page is shown (the loading UI then hides). Exposes `window.__glasshouseShell = {navigate}` so the
 * bootstrap page, loaded inside a frame by a page script, can hand its URL over.
 */
export function startShell(client, { onFirstPage = () => {} } = {}) {
  const embed = location.pathname.startsWith(EMBED_PREFIX);
  let frame = null;
  let generation = 0;

  async function navigate(url, { method = "GET", body = null, contentType = null, replace = false, fromHistory = false } = {}) {
    const mine = ++generation;
    const headers = [["accept", "text/html,application/xhtml+xml,*/*"]];
    if (contentType) headers.push(["content-type", contentType]);
    let request = { method, url: new URL(url, location.href).href, headers, body: body === null ? null : new TextEncoder().encode(body) };
    let answer;
    for (let hops = 0; ; hops++) {
      answer = await client.request(request);
      const next = redirectStep(request, { status: answer.status, location: header(answer.headers, "location") });
      if (!next || hops >= MAX_REDIRECTS) break;
      request = next;
    }
    const target = request.url;
    if (mine !== generation) return; // a later navigation won
    const disposition = responseDisposition({
      url: target, status: answer.status, contentType: header(answer.headers, "content-type"),
      contentDisposition: header(answer.headers, "content-disposition"),
    });
    if (disposition === "download" && frame) {
      download(answer, target);
      return;
    }
    if (!fromHistory && target !== location.href) history[replace ? "replaceState" : "pushState"]({ glasshouse: true }, "", target);
    else if (!fromHistory && replace) history.replaceState({ glasshouse: true }, "", target);
    const text = new TextDecoder().decode(answer.body);
    render(disposition === "render" ? text : plainTextPage(text, target));
    onFirstPage();
  }

  function download(answer, url) {
    const type = header(answer.headers, "content-type") || "application/octet-stream";
    const href = URL.createObjectURL(new Blob([answer.body], { type }));
    const link = Object.assign(document.createElement("a"), { href, download: downloadName(url, header(answer.headers, "content-disposition")) });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  }

  function render(html) {
    const fresh = document.createElement("iframe");
    fresh.className = "glasshouse-page";
    fresh.title = "Gallery page";
    if (embed) fresh.setAttribute("scrolling", "no");
    document.body.append(fresh);
    const doc = fresh.contentDocument;
    doc.open();
    // document.open() erased the frame's listeners, so hooks go in after it and before the page.
    hookFrame(fresh.contentWindow);
    doc.write(html);
    doc.close();
    if (frame) frame.remove();
    frame = fresh;
    document.title = doc.title || document.title;
    fresh.contentWindow.addEventListener("load", () => (document.title = doc.title || document.title));
  }

  function hookFrame(win) {
    const appURL = (input) => {
      const url = new URL(input instanceof win.Request ? input.url : String(input), location.href);
      return requestKind(url, location.origin) === "app" ? url.href : null;
    };
    const nativeFetch = win.fetch.bind(win);
    win.fetch = async (input, init = {}) => {
      const url = appURL(input);
      if (!url) return nativeFetch(input, init);
      const original = new win.Request(input, init);
      const body = ["GET", "HEAD"].includes(original.method) ? null : new Uint8Array(await original.arrayBuffer());
      // Redirects as a browser's fetch takes them (the Fetch standard): followed by default, up to
      // MAX_REDIRECTS, with `redirected` and the final `url` set; `redirect: "manual"` gets an
      // opaque redirect and `"error"` a network error. A redirect off the app's paths leaves the Worker.
      let request = { method: original.method, url, headers: [...original.headers], body };
      for (let hops = 0; ; hops++) {
        const answer = await client.request(request);
        const next = redirectStep(request, { status: answer.status, location: header(answer.headers, "location") });
        if (!next) return appResponse(win, answer, request, hops > 0);
        if (original.redirect === "error") throw new win.TypeError(`Failed to fetch: ${request.url} redirects and the request's redirect mode is "error"`);
        if (original.redirect === "manual") return asResponse(new win.Response(null), { type: "opaqueredirect", status: 0, ok: false, statusText: "", url: request.url });
        if (hops >= MAX_REDIRECTS) throw new win.TypeError(`Failed to fetch: more than ${MAX_REDIRECTS} redirects from ${url}`);
        if (!appURL(next.url)) {
          const outside = await nativeFetch(next.url, { method: next.method, headers: next.headers, body: next.body, redirect: original.redirect });
          return asResponse(outside, { redirected: true });
        }
        request = next;
      }
    };
    win.XMLHttpRequest = shellXHR(win);
    win.addEventListener("click", (event) => {
      const link = event.target instanceof win.Element && event.target.closest("a[href], area[href]");
      if (!link) return;
      const url = linkNavigation(
        {
          href: link.href, button: event.button, ctrlKey: event.ctrlKey, metaKey: event.metaKey, shiftKey: event.shiftKey,
          altKey: event.altKey, target: link.target, download: link.getAttribute("download"), defaultPrevented: event.defaultPrevented,
        },
        location.href,
      );
      if (!url) return;
      event.preventDefault();
      navigate(url);
    });
    const submit = (form, submitter) => {
      const data = new win.FormData(form, submitter || undefined);
      const entries = [...data].filter(([, value]) => typeof value === "string");
      const request = formRequest(
        { action: form.getAttribute("action") ? form.action : location.href, method: form.method, enctype: form.enctype, entries },
        location.href,
      );
      if (requestKind(request.url, location.origin) !== "app" || (form.target && form.target !== "_self")) return false;
      navigate(request.url, request);
      return true;
    };
    win.addEventListener("submit", (event) => {
      if (!event.defaultPrevented && submit(event.target, event.submitter)) event.preventDefault();
    });
    const nativeSubmit = win.HTMLFormElement.prototype.submit;
    win.HTMLFormElement.prototype.submit = function () {
      if (!submit(this, null)) nativeSubmit.call(this);
    };
  }

  // The embedded page inside the frame reports its height; in embed mode the frame follows it and
  // the shell passes the message on to the article page.
  window.addEventListener("message", (event) => {
    const data = event.data || {};
    if (embed && frame && window.parent !== window && event.source === window.parent && data.type === MEASURE_MESSAGE) {
      frame.contentWindow.postMessage({ type: MEASURE_MESSAGE }, location.origin);
      return;
    }
    if (!frame || event.source !== frame.contentWindow || data.type !== RESIZE_MESSAGE || !embed) return;
    const height = Math.max(0, Math.round(Number(data.height) || 0));
    frame.style.height = `${height}px`;
    if (window.parent !== window) window.parent.postMessage({ type: RESIZE_MESSAGE, height }, "*");
  });
  window.addEventListener("popstate", () => navigate(location.href, { fromHistory: true }));
  window.__glasshouseShell = { navigate: (url) => navigate(url) };
  document.documentElement.classList.toggle("glasshouse-embed", embed);
  return navigate(location.href, { replace: true });
}

/** `response` with read-only properties (`url`, `redirected`, `type`, ...) given as own properties: the
 * Response constructor cannot set them, and page scripts read them. */
function asResponse(response, properties) {
  for (const [name, value] of Object.entries(properties)) Object.defineProperty(response, name, { value, enumerable: true });
  return response;
}

/** The Worker's `answer` to `request` (the last of its redirect chain) as a Response of the frame `win`. */
function appResponse(win, answer, request, redirected) {
  const noBody = request.method === "HEAD" || [204, 205, 304].includes(answer.status);
  return asResponse(new win.Response(noBody ? null : answer.body, { status: answer.status, headers: answer.headers }), {
    url: request.url, redirected,
  });
}

function plainTextPage(text, url) {
  const escaped = text.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  const title = new URL(url).pathname.split("/").pop() || url;
  return `<!doctype html><meta charset="utf-8"><title>${title.replace(/[&<>"]/g, "")}</title>` +
    `<pre style="white-space:pre-wrap;word-break:break-word;margin:8px">${escaped}</pre>`;
}

/** An XMLHttpRequest for `win` that goes through `win.fetch` (so app paths reach the Worker). Async only. */
export function shellXHR(win) {
  const EVENTS = ["readystatechange", "loadstart", "progress", "load", "error", "abort", "timeout", "loadend"];
  return class ShellXMLHttpRequest extends win.EventTarget {
    static UNSENT = 0; static OPENED = 1; static HEADERS_RECEIVED = 2; static LOADING = 3; static DONE = 4;
    constructor() {
      super();
      Object.assign(this, { readyState: 0, status: 0, statusText: "", response: null, responseText: "", responseType: "",
        responseURL: "", responseXML: null, timeout: 0, withCredentials: false, upload: new win.EventTarget() });
      for (const name of EVENTS) this[`on${name}`] = null;
      this._headers = [];
      this._responseHeaders = [];
      this._controller = null;
    }
    _fire(name) {
      const event = new win.ProgressEvent(name);
      const handler = this[`on${name}`];
      if (typeof handler === "function") handler.call(this, event);
      this.dispatchEvent(event);
    }
    _state(value) {
      this.readyState = value;
      this._fire("readystatechange");
    }
    open(method, url) {
      Object.assign(this, { _method: String(method).toUpperCase(), _url: new URL(url, win.location.href).href, _headers: [] });
      this._state(1);
    }
    setRequestHeader(name, value) {
      this._headers.push([name, value]);
    }
    overrideMimeType() {}
    getResponseHeader(name) {
      const found = this._responseHeaders.filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
      return found.length ? found.join(", ") : null;
    }
    getAllResponseHeaders() {
      return this._responseHeaders.map(([key, value]) => `${key.toLowerCase()}: ${value}\r\n`).join("");
    }
    abort() {
      if (this._controller) this._controller.abort();
    }
    async send(body = null) {
      this._controller = new win.AbortController();
      this._fire("loadstart");
      try {
        const response = await win.fetch(this._url, {
          method: this._method, headers: this._headers, signal: this._controller.signal,
          body: ["GET", "HEAD"].includes(this._method) ? undefined : body,
        });
        this._responseHeaders = [...response.headers];
        Object.assign(this, { status: response.status, statusText: response.statusText, responseURL: response.url || this._url });
        this._state(2);
        const buffer = await response.arrayBuffer();
        const text = new TextDecoder().decode(buffer);
        this.responseText = ["", "text"].includes(this.responseType) ? text : "";
        this.response = {
          "": text, text, arraybuffer: buffer, blob: new win.Blob([buffer], { type: response.headers.get("content-type") || "" }),
          json: (() => { try { return JSON.parse(text); } catch { return null; } })(),
          document: null,
        }[this.responseType];
        this._state(4);
        this._fire("load");
      } catch (error) {
        this._state(4);
        this._fire(error && error.name === "AbortError" ? "abort" : "error");
      }
      this._fire("loadend");
    }
  };
}
