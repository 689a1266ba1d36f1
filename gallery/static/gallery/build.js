// The build page: polls the build status (JSON) and redraws the steps, the log and the outcome.
(() => {
  "use strict";
  const steps = document.getElementById("steps");
  const statusURL = steps.dataset.statusUrl;
  const publishURL = steps.dataset.publishUrl;
  const progress = JSON.parse(document.getElementById("progress-states").textContent);
  const logBox = document.getElementById("log");
  const outcome = document.getElementById("outcome");
  const warningsBox = document.getElementById("warnings");

  function notice(kind, ...parts) {
    const div = document.createElement("div");
    div.className = "notice " + kind;
    div.append(...parts);
    outcome.replaceChildren(div);
  }

  function link(href, label) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  }

  // The database check's warnings (e.g. a WAL-mode upload), as text: they may quote names from the database.
  function renderWarnings(warnings) {
    warningsBox.replaceChildren(...(warnings || []).map((text) => {
      const div = document.createElement("div");
      const strong = document.createElement("strong");
      div.className = "notice warning";
      strong.textContent = "Warning:";
      div.append(strong, " " + text);
      return div;
    }));
  }

  // What a finished build made: its tables, row counts and typed columns (names from the data: text only).
  const made = document.getElementById("made");
  function renderTables(tables) {
    if (!tables || !tables.length) return;
    const items = tables.map((table) => {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = table.name;
      li.append(name, `: ${table.rows.toLocaleString("en")} row${table.rows === 1 ? "" : "s"}; columns: `);
      table.columns.forEach((column, i) => {
        li.append((i ? ", " : "") + column.name);
        if (column.type) {
          const kind = document.createElement("span");
          kind.className = "muted";
          kind.textContent = ` (${column.type})`;
          li.append(kind);
        }
      });
      return li;
    });
    document.getElementById("made-tables").replaceChildren(...items);
    made.hidden = false;
  }

  function render(s) {
    renderWarnings(s.warnings);
    renderTables(s.tables);
    const reached = progress.indexOf(s.state);
    for (const [i, li] of document.querySelectorAll("#steps li").entries()) {
      li.className = reached < 0 ? "stopped" : (i < reached || s.state === "ready") ? "done" : i === reached ? "current" : "todo";
    }
    // The log is null for readers who may not see it (only the publisher and moderators do): no box then.
    if (logBox && s.log !== null) {
      const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
      logBox.textContent = s.log || "Waiting for a build worker…";
      if (atBottom) logBox.scrollTop = logBox.scrollHeight;
    }
    if (s.state === "ready") {
      if (s.is_public) notice("good", "Your gallery is live at ", link(s.gallery_url, s.gallery_url), ". ",
        link(s.gallery_page, "Its page"), " has the embed code, share links and the download.");
      else if (s.moderation_state === "rejected") notice("bad", "Built, but a moderator rejected this gallery.");
      else if (s.moderation_state === "taken_down") notice("bad", "Built, but this gallery was taken down.");
      else notice("", "Built; waiting for a moderator to approve it. Keep this page's address: the gallery link appears here once it is approved.");
    } else if (s.state === "failed") {
      const strong = document.createElement("strong");
      strong.textContent = "The build failed.";
      notice("bad", strong, " " + (s.failure_reason || "No reason was recorded."), document.createElement("br"),
        "What to do: fix the problem described above" + (s.log !== null ? " (the log below has details)" : "") + ", then ",
        link(publishURL, "publish the file again"), ".");
    } else if (s.state === "cancelled") {
      notice("bad", "This build was cancelled. ", link(publishURL, "Publish again"), ".");
    } else if (s.queue_note) {
      notice("", s.queue_note + " This page updates by itself.");
    } else {
      notice("", s.state_label + "… This page updates by itself.");
    }
  }

  let delay = 1000;
  async function poll() {
    try {
      const response = await fetch(statusURL, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error("status " + response.status);
      const s = await response.json();
      render(s);
      delay = 1000;
      if (s.finished) return;
    } catch (error) {
      delay = Math.min(delay * 2, 10000);  // server restarting or offline: back off, keep trying
    }
    setTimeout(poll, delay);
  }

  const initial = JSON.parse(document.getElementById("build-status").textContent);
  if (!initial.finished) setTimeout(poll, delay);
})();
