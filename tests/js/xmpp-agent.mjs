// node xmpp-agent.mjs <ws-url> <user> <password> [resource]
//
// A real XMPP client (@xmpp/client over WebSocket, SCRAM-SHA-1 as the
// library negotiates it) that the pytest suite drives line by line:
//
//   stdout: {"event":"online","jid":"alice@localhost/r"}
//           {"event":"stanza","xml":"<message …/>"}   one per stanza received
//           {"event":"error","error":"…"}              then exit 1
//   stdin:  {"send":"<presence to='…'/>"}               written as one stanza
//           {"quit":true}                              <close/> and exit 0
//
// The library does SASL, the restarted stream, resource binding and its
// own iq bookkeeping; everything else is the test's.
import { client } from "@xmpp/client";
import { WebSocket } from "ws";
import readline from "node:readline";

globalThis.WebSocket ??= WebSocket;

const [url, username, password, resource] = process.argv.slice(2);
if (!password) {
  console.error("usage: xmpp-agent.mjs <ws-url> <user> <password> [resource]");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const xmpp = client({ service: url, domain: "localhost", username, password, resource });
xmpp.reconnect.stop();

xmpp.on("stanza", (el) => out({ event: "stanza", xml: el.toString() }));
xmpp.on("error", (e) => out({ event: "error", error: String(e.message ?? e), condition: e.condition ?? null }));
xmpp.on("offline", () => {
  out({ event: "offline" });
  process.exit(0);
});

try {
  const address = await xmpp.start();
  out({ event: "online", jid: address.toString() });
} catch (e) {
  out({ event: "error", error: String(e.message ?? e), condition: e.condition ?? null });
  process.exit(1);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.send) {
    await xmpp.write(cmd.send);
  } else if (cmd.quit) {
    await xmpp.stop();
    process.exit(0);
  }
});
rl.on("close", async () => {
  try { await xmpp.stop(); } catch { /* gone */ }
  process.exit(0);
});
