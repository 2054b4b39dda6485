"""Graceful drain (issue 8): SIGTERM to a gateway while its clients chat.
Each of its clients is told in its protocol's words — IRC a NOTICE and
`ERROR :Closing Link: … (Server shutting down)`, XMPP the
`system-shutdown` stream error, Tinode `{ctrl}` 503 — the gateway exits
within its grace period, and each client, reconnecting to the other
gateway, finds every message it missed in the room's history (IRC
CHATHISTORY, the XMPP join history, Tinode `get data`)."""

from __future__ import annotations

import re
import secrets
import time

from harness.raw import by, esc
from harness.tinodeagent import is_ctrl, is_data
from harness.xmppagent import C, create_account

MUC = "conference.localhost"
DELAY = "{urn:xmpp:delay}"
HISTORY_CAPS = ("draft/chathistory", "batch", "server-time", "message-tags")


def xmpp_join(agent, room: str, nick: str, history: int = 0) -> None:
    agent.send(f"<presence to='{room}@{MUC}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>"
               f"<history maxstanzas='{history}'/></x></presence>")
    agent.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")


def test_sigterm_tells_every_protocol_and_nothing_is_missed(make_platform, clients, agents, tinodes, uniq):
    plat = make_platform(gateways=2)
    room = uniq("drain")
    chan = "#" + room
    talker = clients.user(uniq("dt"), gw=1, caps=("echo-message", "message-tags"), plat=plat)
    talker.join(chan)
    irc = clients.user(uniq("di"), gw=0, caps=HISTORY_CAPS, plat=plat)
    irc.join(chan)
    xname, xpw = create_account(plat, uniq, "dx")
    xmpp = agents(plat, xname, xpw, gw=0)
    xmpp_join(xmpp, room, xname)
    tin = tinodes(plat, gw=0)
    tlogin = uniq("dtn")
    tpw = "pw-" + secrets.token_hex(6)
    tin.call("create", login=tlogin, password=tpw, fn="Drain")
    grp = "grp" + room
    assert tin.call("subscribe", topic=grp)["code"] == 200

    def say(text: str) -> str:
        talker.send(f"PRIVMSG {chan} :{text}")
        return talker.expect(by(talker.nick) + rf"PRIVMSG {esc(chan)} :{re.escape(text)}$").tags["msgid"]

    say("before")
    seen = irc.expect(rf"PRIVMSG {esc(chan)} :before$")
    xmpp.expect(lambda s: s.tag == C + "message" and s.body() == "before", what="before")
    before = tin.expect(lambda p: is_data(grp)(p) and p["data"]["content"] == "before", what="before")

    # SIGTERM while the room goes on talking.
    gw0 = plat.gateway(0)
    assert gw0.popen is not None
    started = time.monotonic()
    gw0.popen.send_signal(15)
    missed = []
    for i in range(3):
        say(f"during {i}")
        missed.append(f"during {i}")
    irc.expect(r"NOTICE \S+ :\*\*\* Server shutting down", timeout=10)
    irc.expect(r"^ERROR :Closing Link: \S+ \(Server shutting down\)$", timeout=10)
    irc.expect_closed(timeout=10)
    err = xmpp._wait_event(lambda e: e["event"] in ("error", "offline", "exit"), 10)
    assert err is not None, "the XMPP client was not told"
    shutdown = [s for s in xmpp.stanzas if "system-shutdown" in s.raw]
    assert shutdown or (err.get("condition") == "system-shutdown"), (err, [s.raw for s in xmpp.stanzas[-3:]])
    tin.expect(lambda p: is_ctrl(503)(p), what="ctrl 503", timeout=10)
    gw0.popen.wait(20)
    took = time.monotonic() - started
    assert took < 16, f"the gateway took {took:.1f}s to exit"
    for i in range(3):
        say(f"after {i}")
        missed.append(f"after {i}")

    # Everyone comes back through the other gateway and finds what it missed.
    back = clients.user(irc.nick, gw=1, caps=HISTORY_CAPS, plat=plat)
    back.join(chan)
    # (History is written asynchronously: ask until the last line is in.)
    deadline = time.monotonic() + 15
    while True:
        back.send(f"CHATHISTORY AFTER {chan} msgid={seen.tags['msgid']} 50")
        start = back.expect(r"BATCH \+\S+ chathistory ")
        ref = start.params[0][1:]
        end = back.expect(rf"BATCH -{re.escape(ref)}$")
        texts = [ln.text for ln in back.drain() if ln.tags.get("batch") == ref and ln.n < end.n
                 and ln.command == "PRIVMSG"]
        if texts == missed or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert texts == missed, texts

    xback = agents(plat, xname, xpw, gw=1)
    xmpp_join(xback, room, xname, history=20)
    old = [s.body() for s in xback.all(lambda s: s.find(DELAY + "delay") is not None and s.body())]
    assert old[-len(missed):] == missed, old

    tback = tinodes(plat, gw=1)
    tback.call("login", login=tlogin, password=tpw)
    assert tback.call("subscribe", topic=grp, data=20)["code"] == 200
    msgs = [m for m in tback.call("messages", topic=grp) if m["seq"] > before["data"]["seq"]]
    assert [m["content"] for m in msgs] == missed, msgs
