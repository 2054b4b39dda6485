"""The metrics an operator needs (issue 8), with non-zero values after real
traffic: sessions by protocol and gateway, messages in and out by
protocol, the intent-to-delivery latency histogram, the depth of session
inboxes, auth failures and the history write lag — each read from the
process's own `/metrics` on its admin port."""

from __future__ import annotations

import re
import secrets
import time

from harness.raw import by, esc
from harness.tinodeagent import is_data
from harness.xmppagent import C, create_account

MUC = "conference.localhost"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric `name`: its labels and value."""
    out = []
    for m in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        out.append((labels, float(m.group(2))))
    return out


def value(text: str, name: str, **labels: str) -> float:
    return sum(v for ls, v in samples(text, name) if all(ls.get(k) == w for k, w in labels.items()))


def metrics(proc) -> str:
    status, body = proc.get("/metrics")
    assert status == 200, f"{proc.name} /metrics: {status}"
    return body


def test_operator_metrics_have_values_after_traffic(platform, clients, agents, tinodes, uniq):
    room = uniq("met")
    chan = "#" + room
    a = clients.user(uniq("ma"), gw=0)
    b = clients.user(uniq("mb"), gw=1)
    a.join(chan)
    b.join(chan)
    xname, xpw = create_account(platform, uniq, "mx")
    x = agents(platform, xname, xpw, gw=0)
    x.send(f"<presence to='{room}@{MUC}/{xname}'><x xmlns='http://jabber.org/protocol/muc'>"
           "<history maxstanzas='0'/></x></presence>")
    x.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")
    tin = tinodes(platform, gw=0)
    login = uniq("mtn")
    tin.call("create", login=login, password="pw-" + secrets.token_hex(6), fn="Metrics")
    grp = "grp" + room
    assert tin.call("subscribe", topic=grp)["code"] == 200

    for i in range(5):
        a.send(f"PRIVMSG {chan} :irc {i}")
    b.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :irc 4$")
    x.send(f"<message to='{room}@{MUC}' type='groupchat' id='m1'><body>from xmpp</body></message>")
    b.expect(rf"PRIVMSG {esc(chan)} :from xmpp$")
    tin.call("publish", topic=grp, text="from tinode")
    b.expect(rf"PRIVMSG {esc(chan)} :from tinode$")
    tin.expect(lambda p: is_data(grp)(p) and p["data"]["content"] == "from xmpp", what="xmpp's line")
    # An auth failure.
    bad = clients.user(uniq("mf"))
    bad.send(f"PRIVMSG NickServ :IDENTIFY {xname} not-the-password")
    bad.expect(r"NickServ!\S+ NOTICE \S+ :", timeout=20)

    gw0, gw1 = metrics(platform.gateway(0)), metrics(platform.gateway(1))
    for proto in ("irc", "xmpp", "tinode"):
        assert value(gw0, "gateway_sessions_by_protocol", protocol=proto) >= 1, proto
        assert value(gw0, "gateway_messages_in_total", protocol=proto) >= 1, proto
    gateways = {ls.get("gateway") for ls, _ in samples(gw0, "gateway_sessions_by_protocol")}
    assert gateways and None not in gateways, gateways
    assert value(gw0, "gateway_connections") >= 3
    assert value(gw1, "gateway_messages_out_total", protocol="irc") >= 7
    assert value(gw0, "gateway_messages_out_total", protocol="xmpp") >= 1
    assert value(gw0, "gateway_messages_out_total", protocol="tinode") >= 1
    for gw in (gw0, gw1):
        assert value(gw, "gateway_delivery_seconds_count") >= 1
        assert value(gw, "gateway_delivery_seconds_bucket", le="+Inf") >= 1
        assert value(gw, "gateway_session_queue_depth_count") >= 1

    auth = metrics(platform.auths[0])
    assert value(auth, "auth_failures_total") >= 1, [s for s in samples(auth, "auth_failures_total")]
    assert value(auth, "auth_requests_total") >= 1

    router = metrics(platform.router)
    assert value(router, "router_intents_total", op="message") >= 7
    assert value(router, "router_batch_seconds_count") >= 1

    # The history service's write lag, once it has stored those lines.
    deadline = time.monotonic() + 15
    while True:
        hist = metrics(platform.histories[0])
        if value(hist, "history_write_lag_seconds_count") >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert value(hist, "history_write_lag_seconds_count") >= 1
    assert value(hist, "history_items_persisted_total") >= 1


def test_the_grafana_dashboard_only_uses_metrics_the_processes_emit():
    """deploy/grafana/chat-platform.json: valid JSON, and every metric an
    expression queries is one some process's source names (a renamed metric
    must not leave an empty panel behind)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    dash = json.loads((root / "deploy/grafana/chat-platform.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10, exprs
    sources = "\n".join(p.read_text() for d in ("edge-gateway", "router-service", "history-service", "auth-service", "bus")
                        for p in (root / d / "src").rglob("*.rs"))
    functions = {"sum", "by", "rate", "histogram_quantile", "max", "le", "instance", "protocol", "op",
                 "reason", "what", "why", "outcome"}
    names = set()
    for e in exprs:
        for word in re.findall(r"[a-z_][a-z0-9_]*", re.sub(r"\{[^}]*\}|\[[^]]*\]", "", e)):
            if word not in functions:
                names.add(word)
    assert names, exprs
    for name in sorted(names):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        assert f'"{base}"' in sources, f"{name}: no process emits {base}"
