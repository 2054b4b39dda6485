// node xmpp-login.mjs <ws-url> <user> <password> <mechanism> [resource]
// Logs in with @xmpp/client over WebSocket using exactly <mechanism>, and
// prints one JSON line: {"ok":true,"jid":…,"mechanism":…,"server_final_ok":…}
// or {"ok":false,"condition":…,"error":…}. Exit status 0 either way (the
// caller judges); 2 on bad usage.
import { client, xml } from "@xmpp/client";
import { WebSocket } from "ws";
import ScramSha256, { instances } from "./scram-sha-256.mjs";

// Node 20 has no global WebSocket (22 does); @xmpp/websocket expects one.
globalThis.WebSocket ??= WebSocket;

const [url, username, password, mechanism, resource] = process.argv.slice(2);
if (!mechanism) {
  console.error("usage: xmpp-login.mjs <ws-url> <user> <password> <mechanism> [resource]");
  process.exit(2);
}

const xmpp = client({
  service: url,
  domain: "localhost",
  resource,
  credentials: async (authenticate, mechanisms) => {
    if (!mechanisms.includes(mechanism)) {
      throw new Error(`server does not offer ${mechanism}: ${mechanisms.join(" ")}`);
    }
    await authenticate({ username, password }, mechanism);
  },
});
xmpp.reconnect.stop();
xmpp.saslFactory.use(ScramSha256);

// The SCRAM server-final message arrives in <success/>; for SCRAM-SHA-256
// check its signature (the library itself does not).
let serverFinal = null;
xmpp.on("nonza", (el) => {
  if (el.name === "success") serverFinal = Buffer.from(el.text(), "base64").toString();
});

const timer = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, condition: "timeout", error: "no result in 20 s" }));
  process.exit(0);
}, 20000);

try {
  const address = await xmpp.start();
  let serverFinalOk = null;
  if (mechanism === "SCRAM-SHA-256") {
    const expected = instances.at(-1)?.serverSignature;
    serverFinalOk = serverFinal !== null && expected !== undefined && serverFinal === `v=${expected}`;
  } else if (mechanism.startsWith("SCRAM-")) {
    serverFinalOk = serverFinal !== null && serverFinal.startsWith("v=");
  }
  // XEP-0199 on the bound stream: the whole answer, to check its type.
  const pong = await xmpp.iqCaller.request(
    xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
  );
  console.log(JSON.stringify({
    ok: true, jid: address.toString(), mechanism, server_final_ok: serverFinalOk, ping: pong.attrs.type === "result",
  }));
  await xmpp.stop();
} catch (e) {
  console.log(JSON.stringify({ ok: false, condition: e.condition ?? null, error: String(e.message ?? e) }));
  try { await xmpp.stop(); } catch { /* already gone */ }
}
clearTimeout(timer);
process.exit(0);
