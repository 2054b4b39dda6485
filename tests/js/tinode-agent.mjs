// node tinode-agent.mjs <host:port> <ws|lp> [apikey]
//
// A real Tinode client (tinode-sdk from npm) that the pytest suite drives
// line by line:
//
//   stdout: {"event":"ready"}                         connected, {hi} answered
//           {"event":"raw","pkt":{…}}                 every server message
//           {"event":"result","req":1,"ok":true,"value":…}
//           {"event":"result","req":1,"ok":false,"code":401,"error":"…"}
//   stdin:  {"req":1,"op":"<operation>", …arguments}
//
// Operations (each answered by one result):
//   create {login, password, fn}      createAccountBasic(…, {login:true, public:{fn}})
//   login {login, password}           loginBasic
//   loginToken {token}                loginToken
//   token {}                          getAuthToken() -> {token, expires}
//   newGroup {fn}                     subscribe a new group -> its grp… name
//   subscribe {topic, data}           subscribe with desc/sub and the newest <data> messages
//   publish {topic, text}             publishMessage of a plain string
//   publishDrafty {topic, drafty}     publishMessage of a Drafty object
//   page {topic, limit}               getMessagesPage(limit) (older messages)
//   messages {topic}                  the SDK's cached messages: [{seq, from, content}]
//   keypress {topic}                  noteKeyPress
//   read {topic, seq}                 noteRead
//   leave {topic}                     leave(false)
//   subs {topic}                      the SDK's cached subscribers [{user, online}]
//   desc {topic}                      topic.seq / maxMsgSeq / name
//   recv {topic, seq}                 noteRecv
//   leaveUnsub {topic}                leave(true)
//   me {}                             attach `me` (or ask again) for its subscriptions:
//                                     [{topic, seq, read, recv, fn}] as the server sent them
//   find {query}                      fnd: setMeta({desc:{public:query}}) then getMeta(sub)
//                                     -> [{user|topic, fn, private}]
//   setNote {topic, note}             setMeta({desc:{public:{note}}})
//   evict {topic, user}               delSubscription(user)
//   delTopic {topic}                  delTopic(true)
//   delMsgs {topic, seqs, hard}       delMessagesList(seqs, hard) -> {code, del}
//
// The SDK's own bookkeeping (ids, {hi}, recv notes, caching) is the SDK's;
// the tests look at the raw packets for what the server really sent.
import WebSocket from "ws";
import xhr2 from "xhr2";
import readline from "node:readline";

globalThis.WebSocket = WebSocket;
globalThis.XMLHttpRequest = xhr2;
const { Tinode, Drafty } = (await import("tinode-sdk")).default;
Tinode.setNetworkProviders(WebSocket, xhr2);
// Only deleteDatabase is called with persist:false.
Tinode.setDatabaseProvider({ deleteDatabase: () => ({}) });

const [host, transport, apiKey] = process.argv.slice(2);
if (!transport) {
  console.error("usage: tinode-agent.mjs <host:port> <ws|lp> [apikey]");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const tinode = new Tinode({
  appName: "chat-tests",
  host,
  apiKey: apiKey || "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K",
  transport,
  secure: false,
  persist: false,
});
// Every packet received, for the harness and for `arrival` below.
const received = [];
let arrived = () => {};
tinode.onRawMessage = (text) => {
  try {
    const pkt = JSON.parse(text);
    received.push(pkt);
    out({ event: "raw", pkt });
  } catch {
    out({ event: "raw", text });
  }
  arrived();
};

// Resolves once a packet received at index `from` or later satisfies
// `pred` (or after `ms`), and the SDK has handled it: an SDK promise
// resolves on a request's {ctrl}, while the {meta} and {data} that answer
// the rest of the request come after it.
async function arrival(from, pred, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!received.slice(from).some(pred) && Date.now() < deadline) {
    await new Promise((resolve) => {
      arrived = resolve;
      setTimeout(resolve, 50);
    });
  }
  await tick();
}

// The answers to the parts of a {sub} or {get} with id `id`.
async function answered(from, id, parts) {
  const done = (part) => (p) =>
    (p.meta?.id === id && p.meta[part] !== undefined) ||
    (p.ctrl?.id === id && p.ctrl.params?.what === part);
  for (const part of parts) await arrival(from, done(part));
}
// TINODE_AGENT_LOG=1: the SDK's own log (every packet it sends) on stderr,
// which the harness shows when a test fails.
if (process.env.TINODE_AGENT_LOG) {
  tinode.enableLogging(true);
  tinode.logger = (str, ...args) => console.error(str, ...args);
}
tinode.onDisconnect = (err) => out({ event: "disconnect", error: String(err?.message ?? err) });

const connected = new Promise((resolve) => {
  tinode.onConnect = resolve;
});
try {
  await tinode.connect();
  await connected;
  out({ event: "ready" });
} catch (e) {
  out({ event: "error", error: String(e?.message ?? e) });
  process.exit(1);
}

const tick = () => new Promise((r) => setTimeout(r, 20));

function cachedMessages(topic) {
  const list = [];
  topic.messages((m) => {
    if (m.seq > 0 && !m._deleted) list.push({ seq: m.seq, from: m.from, content: m.content });
  });
  return list;
}

const ops = {
  async create({ login, password, fn }) {
    const ctrl = await tinode.createAccountBasic(login, password, {
      login: true,
      public: { fn: fn || login },
    });
    return { user: ctrl.params.user, code: ctrl.code };
  },
  async login({ login, password }) {
    const ctrl = await tinode.loginBasic(login, password);
    return { user: ctrl.params.user, code: ctrl.code };
  },
  async loginToken({ token }) {
    const ctrl = await tinode.loginToken(token);
    return { user: ctrl.params.user, code: ctrl.code };
  },
  async token() {
    const t = tinode.getAuthToken();
    return { token: t.token, expires: t.expires.toISOString() };
  },
  async newGroup({ fn }) {
    const topic = tinode.getTopic(tinode.newGroupTopicName(false));
    const from = received.length;
    const ctrl = await topic.subscribe(
      topic.startMetaQuery().withDesc().withSub().build(),
      { desc: { public: { fn: fn || "group" } } },
    );
    await answered(from, ctrl.id, ["desc", "sub"]);
    return { topic: topic.name, code: ctrl.code, tmpname: ctrl.params?.tmpname ?? null };
  },
  async subscribe({ topic: name, data }) {
    const topic = tinode.getTopic(name);
    let q = topic.startMetaQuery().withDesc().withSub();
    if (data) q = q.withLaterData(data);
    const from = received.length;
    const ctrl = await topic.subscribe(q.build());
    if (ctrl.code < 300) await answered(from, ctrl.id, data ? ["desc", "sub", "data"] : ["desc", "sub"]);
    return { topic: topic.name, code: ctrl.code };
  },
  async publish({ topic: name, text }) {
    const topic = tinode.getTopic(name);
    const msg = topic.createMessage(text, false);
    const from = received.length;
    const ctrl = await tinode.publishMessage(msg);
    const seq = ctrl?.params?.seq ?? null;
    // The sender gets its own {data} too (after the {ctrl}).
    if (seq) await arrival(from, (p) => p.data?.topic === topic.name && p.data.seq === seq);
    return { seq, code: ctrl?.code ?? null };
  },
  async publishDrafty({ topic: name, drafty }) {
    const topic = tinode.getTopic(name);
    const msg = topic.createMessage(drafty, false);
    const from = received.length;
    const ctrl = await tinode.publishMessage(msg);
    const seq = ctrl?.params?.seq ?? null;
    // The sender gets its own {data} too (after the {ctrl}).
    if (seq) await arrival(from, (p) => p.data?.topic === topic.name && p.data.seq === seq);
    return { seq, code: ctrl?.code ?? null };
  },
  async page({ topic: name, limit }) {
    const topic = tinode.getTopic(name);
    const ctrl = await topic.getMessagesPage(limit, undefined, undefined, topic.minMsgSeq(), false);
    await tick();
    return { code: ctrl?.code ?? null, count: ctrl?.params?.count ?? 0 };
  },
  async messages({ topic: name }) {
    return cachedMessages(tinode.getTopic(name));
  },
  async keypress({ topic: name }) {
    tinode.getTopic(name).noteKeyPress();
    return true;
  },
  async read({ topic: name, seq }) {
    tinode.getTopic(name).noteRead(seq);
    return true;
  },
  async leave({ topic: name }) {
    const ctrl = await tinode.getTopic(name).leave(false);
    return { code: ctrl.code };
  },
  async subs({ topic: name }) {
    const list = [];
    tinode.getTopic(name).subscribers((s) => list.push({ user: s.user, online: !!s.online }));
    return list;
  },
  async desc({ topic: name }) {
    const t = tinode.getTopic(name);
    return { name: t.name, seq: t.seq, maxMsgSeq: t.maxMsgSeq(), minMsgSeq: t.minMsgSeq(), public: t.public ?? null };
  },
};

// The subscriptions in the server's answer to request `id` on `topic`.
function subsAnswer(from, topic, id) {
  const pkt = received.slice(from).find((p) => p.meta?.id === id && p.meta.topic === topic && p.meta.sub);
  return pkt ? pkt.meta.sub : [];
}

Object.assign(ops, {
  async recv({ topic: name, seq }) {
    tinode.getTopic(name).noteRecv(seq);
    return true;
  },
  async leaveUnsub({ topic: name }) {
    const ctrl = await tinode.getTopic(name).leave(true);
    return { code: ctrl.code };
  },
  async me() {
    const me = tinode.getMeTopic();
    const from = received.length;
    const q = me.startMetaQuery().withDesc().withSub().build();
    const ctrl = me.isSubscribed() ? await me.getMeta(q) : await me.subscribe(q);
    const id = ctrl?.id ?? ctrl?.ctrl?.id;
    await arrival(from, (p) => (p.meta?.topic === "me" && p.meta.sub) ||
      (p.ctrl?.topic === "me" && p.ctrl.params?.what === "sub"));
    const pkt = received.slice(from).find((p) => p.meta?.topic === "me" && p.meta.sub);
    const subs = pkt ? pkt.meta.sub : [];
    return subs.map((s) => ({ topic: s.topic, seq: s.seq ?? 0, read: s.read ?? 0, recv: s.recv ?? 0,
                              fn: s.public?.fn ?? null, online: !!s.online, id }));
  },
  async find({ query }) {
    const fnd = tinode.getFndTopic();
    if (!fnd.isSubscribed()) await fnd.subscribe();
    await fnd.setMeta({ desc: { public: query } });
    const from = received.length;
    await fnd.getMeta(fnd.startMetaQuery().withSub().build());
    await arrival(from, (p) => (p.meta?.topic === "fnd" && p.meta.sub) ||
      (p.ctrl?.topic === "fnd" && p.ctrl.params?.what === "sub"));
    const pkt = received.slice(from).find((p) => p.meta?.topic === "fnd" && p.meta.sub);
    const contacts = [];
    fnd.contacts((c) => contacts.push(c.topic ?? c.user));
    return {
      raw: (pkt ? pkt.meta.sub : []).map((s) => ({ user: s.user ?? null, topic: s.topic ?? null,
                                                   fn: s.public?.fn ?? null, private: s.private ?? null })),
      contacts,
    };
  },
  async setNote({ topic: name, note }) {
    const ctrl = await tinode.getTopic(name).setMeta({ desc: { public: { note } } });
    return { code: ctrl?.code ?? null };
  },
  async evict({ topic: name, user }) {
    const ctrl = await tinode.getTopic(name).delSubscription(user);
    return { code: ctrl?.code ?? null };
  },
  async delMsgs({ topic: name, seqs, hard }) {
    const ctrl = await tinode.getTopic(name).delMessagesList(seqs, !!hard);
    return { code: ctrl?.code ?? null, del: ctrl?.params?.del ?? null };
  },
  async delTopic({ topic: name }) {
    const ctrl = await tinode.getTopic(name).delTopic(true);
    return { code: ctrl?.code ?? null };
  },
});

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.op === "exit") {
    process.exit(0);
  }
  const op = ops[cmd.op];
  if (!op) {
    out({ event: "result", req: cmd.req, ok: false, code: 0, error: `unknown op ${cmd.op}` });
    return;
  }
  try {
    const value = await op(cmd);
    out({ event: "result", req: cmd.req, ok: true, value });
  } catch (e) {
    out({ event: "result", req: cmd.req, ok: false, code: e?.code ?? 0, error: String(e?.message ?? e) });
  }
});
rl.on("close", () => process.exit(0));
// Never die of a rejected promise the SDK left behind.
process.on("unhandledRejection", (e) => out({ event: "warning", error: String(e?.message ?? e) }));
