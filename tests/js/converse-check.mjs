// node converse-check.mjs <config-json>
//
// Converse.js (the real XMPP web client, node_modules/converse.js/dist) in
// headless Chromium (puppeteer-core), driven by the pytest suite line by
// line, like xmpp-agent.mjs. The config is one JSON argument:
//
//   {"websocket_url": "ws://127.0.0.1:PORT/xmpp", "jid": "alice@localhost",
//    "password": "…", "room": "room@conference.localhost",
//    "chromium": "/usr/bin/chromium"}          (chromium: optional)
//
// A small node:http server on a free 127.0.0.1 port serves a page that
// loads Converse's built files and logs in with those settings (auto
// login, auto join of the room, no BOSH, no connection-method discovery).
//
//   stdout: {"event":"ready","url":"http://127.0.0.1:…/"}   page loaded
//           {"id":N,"ok":true,…} / {"id":N,"ok":false,"error":"…"}   one per command
//           {"event":"error","error":"…"}                   then exit 1
//   stdin:  {"id":1,"cmd":"wait_joined","timeout":20}    room entered, textarea shown
//           {"id":2,"cmd":"wait_text","text":"…","timeout":20}
//                  a message in the room's view containing the text;
//                  answers its sender (data-from) and text
//           {"id":3,"cmd":"send","text":"…"}   typed into the room's textarea, Enter
//           {"id":4,"cmd":"screenshot","path":"/…/x.png"}
//           {"id":5,"cmd":"state"}             connection/room status, shown messages
//           {"id":6,"cmd":"quit"}              closes the browser, exit 0
//
// The browser may load only from 127.0.0.1 (anything else is refused and
// logged), so the check needs no network beyond the local machine.
//
// stderr: the browser's console and page errors, failed requests, and
// every WebSocket frame both ways ("ws> " sent, "ws< " received), so a
// failing run shows what Converse said and what the server answered.
import http from "node:http";
import fs from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const config = JSON.parse(process.argv[2] ?? "null");
if (!config?.websocket_url || !config?.jid || !config?.password || !config?.room) {
  console.error("usage: converse-check.mjs '{\"websocket_url\":…,\"jid\":…,\"password\":…,\"room\":…}'");
  process.exit(2);
}
const CHROMIUM = config.chromium || process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const DIST = path.dirname(fileURLToPath(import.meta.resolve("converse.js/dist/converse.min.js")));

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const log = (...parts) => process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${parts.join(" ")}\n`);

// ---------------------------------------------------------------- the page

const settings = {
  websocket_url: config.websocket_url,
  discover_connection_methods: false,
  bosh_service_url: undefined,
  authentication: "login",
  auto_login: true,
  auto_reconnect: false,
  jid: config.jid,
  password: config.password,
  auto_join_rooms: [config.room],
  muc_nickname_from_jid: true,
  view_mode: "fullscreen",
  assets_path: "/dist/",
  i18n: "en",
  loglevel: "info",
  play_sounds: false,
  show_desktop_notifications: false,
  allow_url_history_change: false,
  whitelisted_plugins: ["chat-test-hook"],
};

const INDEX = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>converse check</title>
<link rel="stylesheet" href="/dist/converse.min.css">
</head>
<body class="converse-fullscreen">
<script type="module">
  // converse.min.js is an ES module (its chunks load relative to it).
  import converse from "/dist/converse.min.js";
  // The test reads Converse's state (connection, room status) through this hook.
  converse.plugins.add("chat-test-hook", {
    initialize() { window.__converse = this._converse; },
  });
  converse.initialize(${JSON.stringify(settings)});
</script>
</body>
</html>
`;

const TYPES = {
  ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json",
  ".map": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png",
  ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".eot": "application/vnd.ms-fontobject",
  ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".html": "text/html",
};

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/" || url.pathname === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(INDEX);
    return;
  }
  if (url.pathname.startsWith("/dist/")) {
    const file = path.resolve(DIST, "." + decodeURIComponent(url.pathname.slice("/dist".length)));
    if (file.startsWith(DIST + path.sep)) {
      try {
        const data = await fs.readFile(file);
        res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
        res.end(data);
        return;
      } catch { /* 404 below */ }
    }
  }
  if (url.pathname === "/favicon.ico") {
    res.writeHead(204);
  } else {
    log("http: 404", req.method, req.url);
    res.writeHead(404);
  }
  res.end();
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

// ------------------------------------------------------------- the browser

let browser;
try {
  await fs.access(CHROMIUM);
} catch {
  out({ event: "error", error: `no Chromium at ${CHROMIUM} (apt-get install chromium)` });
  process.exit(1);
}
try {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run", "--window-size=1280,800"],
    defaultViewport: { width: 1280, height: 800 },
    protocolTimeout: 60000,
  });
} catch (e) {
  out({ event: "error", error: `Chromium (${CHROMIUM}) did not start: ${e.message ?? e}` });
  process.exit(1);
}

const page = await browser.newPage();
page.on("console", (msg) => {
  // the refused non-local requests (logged as "blocked") also show up here
  if (!msg.text().includes("net::ERR_BLOCKED_BY_CLIENT")) log(`console.${msg.type()}:`, msg.text());
});
page.on("pageerror", (e) => log("pageerror:", e.stack ?? e.message ?? String(e)));
// Only the local page and the gateway: requests elsewhere (Converse's
// login form shows sponsor logos from conversejs.org) are refused here.
await page.setRequestInterception(true);
page.on("request", (req) => {
  const url = new URL(req.url());
  if (["data:", "blob:"].includes(url.protocol) || ["127.0.0.1", "localhost"].includes(url.hostname)) {
    req.continue();
  } else {
    log("blocked (not local):", req.url());
    req.abort("blockedbyclient");
  }
});
page.on("requestfailed", (req) => {
  if (!req.failure()?.errorText?.startsWith("net::ERR_BLOCKED_BY_CLIENT")) log("requestfailed:", req.url(), req.failure()?.errorText ?? "");
});
page.on("response", (res) => { if (res.status() >= 400) log("http", res.status(), res.url()); });

const cdp = await page.createCDPSession();
await cdp.send("Network.enable");
cdp.on("Network.webSocketCreated", (e) => log("ws: open", e.url));
cdp.on("Network.webSocketHandshakeResponseReceived", (e) =>
  log("ws: handshake", e.response.status, JSON.stringify(e.response.headers)));
cdp.on("Network.webSocketFrameSent", (e) => log("ws>", e.response.payloadData));
cdp.on("Network.webSocketFrameReceived", (e) => log("ws<", e.response.payloadData));
cdp.on("Network.webSocketFrameError", (e) => log("ws: error", e.errorMessage));
cdp.on("Network.webSocketClosed", () => log("ws: closed"));

try {
  await page.goto(pageUrl, { waitUntil: "load", timeout: 30000 });
} catch (e) {
  out({ event: "error", error: `loading ${pageUrl}: ${e.message ?? e}` });
  await browser.close();
  process.exit(1);
}
out({ event: "ready", url: pageUrl });

// ---------------------------------------------------------------- commands

const ROOM = config.room;
const ROOM_VIEW = `converse-muc[jid="${ROOM}"]`;

async function state() {
  return page.evaluate((room, view) => {
    const c = window.__converse;
    const muc = c?.state?.chatboxes?.get(room) ?? null;
    const el = document.querySelector(view);
    return {
      connected: !!c?.api?.connection?.connected?.(),
      bound_jid: c?.api?.user?.jid?.() ?? null,
      room_status: muc?.session?.get("connection_status") ?? null,
      room_entered: muc?.isEntered?.() ?? false,
      room_view: !!el,
      textarea: !!el?.querySelector("textarea.chat-textarea"),
      messages: [...(el?.querySelectorAll(".chat-msg") ?? [])].map((m) => ({
        from: m.getAttribute("data-from"),
        text: m.querySelector(".chat-msg__text")?.textContent?.trim() ?? "",
      })),
      info: [...(el?.querySelectorAll(".chat-info") ?? [])].map((m) => m.textContent.trim()).slice(-10),
      alerts: [...document.querySelectorAll(".alert, .chat-msg__error, .error")].map((m) => m.textContent.trim()).filter(Boolean).slice(-10),
    };
  }, ROOM, ROOM_VIEW);
}

async function waitJoined(timeout) {
  await page.waitForFunction(
    (room, view) => {
      const muc = window.__converse?.state?.chatboxes?.get(room);
      return muc?.isEntered?.() && document.querySelector(`${view} textarea.chat-textarea`);
    },
    { timeout: timeout * 1000, polling: 200 },
    ROOM, ROOM_VIEW,
  );
  return {};
}

async function waitText(text, timeout) {
  const handle = await page.waitForFunction(
    (view, wanted) => {
      for (const m of document.querySelectorAll(`${view} .chat-msg`)) {
        const t = m.querySelector(".chat-msg__text")?.textContent ?? "";
        if (t.includes(wanted)) return { from: m.getAttribute("data-from"), text: t.trim() };
      }
      return null;
    },
    { timeout: timeout * 1000, polling: 200 },
    ROOM_VIEW, text,
  );
  return await handle.jsonValue();
}

async function send(text) {
  const sel = `${ROOM_VIEW} textarea.chat-textarea`;
  await page.waitForSelector(sel, { timeout: 10000 });
  await page.click(sel);
  await page.type(sel, text);
  await page.keyboard.press("Enter");
  // The textarea is emptied once Converse took the message.
  await page.waitForFunction((s) => document.querySelector(s)?.value === "", { timeout: 5000, polling: 100 }, sel);
  return {};
}

async function screenshot(file) {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file, fullPage: false });
  return { path: file };
}

let quitting = false;
async function quit() {
  quitting = true;
  try { await browser.close(); } catch { /* gone */ }
  server.close();
}

const HANDLERS = {
  state: () => state(),
  wait_joined: (c) => waitJoined(c.timeout ?? 20),
  wait_text: (c) => waitText(c.text, c.timeout ?? 20),
  send: (c) => send(c.text),
  screenshot: (c) => screenshot(c.path),
};

// One command at a time, in order.
let chain = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      out({ ok: false, error: `bad command line: ${e.message}` });
      return;
    }
    if (cmd.cmd === "quit") {
      await quit();
      out({ id: cmd.id, ok: true });
      process.exit(0);
    }
    const handler = HANDLERS[cmd.cmd];
    if (!handler) {
      out({ id: cmd.id, ok: false, error: `unknown command ${cmd.cmd}` });
      return;
    }
    try {
      out({ id: cmd.id, ok: true, ...(await handler(cmd)) });
    } catch (e) {
      let st = null;
      try { st = await state(); } catch { /* the page is gone */ }
      out({ id: cmd.id, ok: false, error: String(e.message ?? e), state: st });
    }
  });
});
rl.on("close", async () => {
  await chain;
  await quit();
  process.exit(0);
});
browser.on("disconnected", () => {
  if (quitting) return;
  out({ event: "error", error: "the browser went away" });
  process.exit(1);
});
