// node irc-agent.mjs <tcp|ws> <host> <port> <nick> [path] [subprotocol]
//
// A real IRC client (irc-framework from npm, the library inside Kiwi IRC)
// that the pytest suite drives line by line. `ws` uses irc-framework's own
// WebSocket transport (with `ws` as Node 20's missing WebSocket), `path`
// defaults to /irc and `subprotocol` to the library's text.ircv3.net.
//
//   stdout: {"event":"registered","nick":"…"}          001 handled
//           {"event":"raw","line":"…","from_server":b}  every line either way
//           {"event":"privmsg","nick":"…","target":"…","message":"…"}
//           {"event":"join","nick":"…","channel":"…"}
//           {"event":"close","error":"…"}               the connection ended
//           {"event":"result","req":1,"ok":true,"value":…}
//           {"event":"result","req":1,"ok":false,"error":"…"}
//   stdin:  {"req":1,"op":"<operation>", …arguments}
//
// Operations (each answered by one result):
//   join {channel}          JOIN, answered once the library saw its own JOIN
//   say {target, text}      PRIVMSG through the library (it splits long text)
//   raw {line}              a line as it is
//   quit {message}          QUIT, answered once the connection closed
import IRC from "irc-framework";
import WsTransport from "irc-framework/src/transports/websocket.js";
import WebSocket from "ws";
import readline from "node:readline";

globalThis.WebSocket ??= WebSocket;

const [transport, host, port, nick, path, subprotocol] = process.argv.slice(2);
if (!nick || !["tcp", "ws"].includes(transport)) {
  console.error("usage: irc-agent.mjs <tcp|ws> <host> <port> <nick> [path] [subprotocol]");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const client = new IRC.Client();
const options = {
  host,
  port: Number(port),
  nick,
  username: nick.slice(0, 10),
  gecos: `irc-framework ${nick}`,
  auto_reconnect: false,
};
if (transport === "ws") {
  Object.assign(options, {
    transport: WsTransport,
    path: path || "/irc",
    websocket_protocol: subprotocol || "text.ircv3.net",
  });
}

client.on("raw", (ev) => out({ event: "raw", line: ev.line, from_server: !!ev.from_server }));
client.on("registered", (ev) => out({ event: "registered", nick: ev.nick }));
client.on("privmsg", (ev) =>
  out({ event: "privmsg", nick: ev.nick, target: ev.target, message: ev.message }),
);
client.on("join", (ev) => out({ event: "join", nick: ev.nick, channel: ev.channel }));
let closed = () => {};
client.on("close", (err) => {
  out({ event: "close", error: err ? String(err?.message ?? err) : null });
  closed();
});

// Resolves with the first event `name` satisfying `pred`, or rejects after `ms`.
function next(name, pred, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.removeListener(name, on);
      reject(new Error(`no ${name} within ${ms} ms`));
    }, ms);
    function on(ev) {
      if (!pred(ev)) return;
      clearTimeout(timer);
      client.removeListener(name, on);
      resolve(ev);
    }
    client.on(name, on);
  });
}

const ops = {
  async join({ channel }) {
    const joined = next(
      "join",
      (ev) => ev.nick === client.user.nick && ev.channel.toLowerCase() === channel.toLowerCase(),
    );
    client.join(channel);
    await joined;
    return true;
  },
  async say({ target, text }) {
    client.say(target, text);
    return true;
  },
  async raw({ line }) {
    client.raw(line);
    return true;
  },
  async quit({ message }) {
    const gone = new Promise((resolve) => {
      closed = resolve;
      setTimeout(resolve, 10000);
    });
    client.quit(message || "bye");
    await gone;
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.op === "exit") process.exit(0);
  const op = ops[cmd.op];
  if (!op) {
    out({ event: "result", req: cmd.req, ok: false, error: `unknown op ${cmd.op}` });
    return;
  }
  try {
    out({ event: "result", req: cmd.req, ok: true, value: await op(cmd) });
  } catch (e) {
    out({ event: "result", req: cmd.req, ok: false, error: String(e?.message ?? e) });
  }
});
rl.on("close", () => process.exit(0));
process.on("unhandledRejection", (e) => out({ event: "warning", error: String(e?.message ?? e) }));

client.connect(options);
