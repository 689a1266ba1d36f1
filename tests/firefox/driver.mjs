// Drives Debian's Firefox ESR over WebDriver BiDi (puppeteer-core) for the pytest fixture in
// tests/plugins/firefox.py. One browser per process; requests and answers are JSON lines:
//
//   stdin   {"id": 1, "op": "goto", "url": "http://…"}
//   stdout  {"id": 1, "result": …}   or   {"id": 1, "error": "…"}
//
// Ops: launch {executablePath, prefs, hosts}, goto {url, timeoutMs}, evaluate {expression, timeoutMs}
// (a JavaScript expression, awaited if it is a promise; its value must be JSON), url, close.
// `hosts` (the *.localhost names of the galleries the test opens) go into Firefox's
// `network.dns.localDomains` and `dom.securecontext.allowlist`, so they resolve to loopback and
// count as secure contexts (Service Workers need one), as they do in Chromium (DESIGN.md).
import readline from "node:readline";
import puppeteer from "puppeteer-core";

let browser = null;
let page = null;

const ops = {
  async launch({ executablePath, prefs = {}, hosts = [] }) {
    const names = hosts.join(",");
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath,
      headless: true,
      extraPrefsFirefox: {
        "network.dns.localDomains": names,
        "dom.securecontext.allowlist": names,
        ...prefs,
      },
    });
    page = await browser.newPage();
    return (await browser.version()) || "firefox";
  },
  async goto({ url, timeoutMs = 60_000 }) {
    const response = await page.goto(url, { waitUntil: "load", timeout: timeoutMs });
    return response ? response.status() : null;
  },
  async evaluate({ expression, timeoutMs = 30_000 }) {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms: ${expression}`)), timeoutMs);
    });
    try {
      return await Promise.race([page.evaluate(`(async () => (${expression}))()`), late]);
    } finally {
      clearTimeout(timer);
    }
  },
  async url() {
    return page.url();
  },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return null;
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, op, ...args } = JSON.parse(line);
  let answer;
  try {
    if (!(op in ops)) throw new Error(`unknown op ${op}`);
    answer = { id, result: (await ops[op](args)) ?? null };
  } catch (error) {
    answer = { id, error: String((error && error.stack) || error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
  if (op === "close") break;
}
if (browser) await browser.close();
