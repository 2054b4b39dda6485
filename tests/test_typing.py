"""Typing notifications in rooms travel as NATS signals, not through the
router (issue 7: "the `+typing` client tag relayed (through NATS, not
persisted)"): IRC `+typing` TAGMSGs, XMPP chat states in a room and
Tinode `{note kp}` (tests/test_tinode.py) reach the room's members on
every gateway, the router never sees them, and other TAGMSGs still go
through the router."""

from __future__ import annotations

import re
import time

from harness.raw import by, esc
from harness.xmppagent import C, create_account
from test_messaging import channel_with as channel

MUC = "conference.localhost"
CHATSTATES = "{http://jabber.org/protocol/chatstates}"


def counter(text: str, name: str, labels: str = "") -> float:
    """The value of a Prometheus counter (0 if absent)."""
    rx = re.compile(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", re.M)
    total = 0.0
    for m in rx.finditer(text):
        if labels in (m.group(1) or ""):
            total += float(m.group(2))
    return total


def router_messages(platform) -> float:
    _, body = platform.router.get("/metrics")
    return counter(body, "router_intents_total", 'op="message"')


def test_typing_reaches_every_gateway_without_the_router(platform, clients, uniq):
    tags = ("message-tags",)
    chan, (a, b, plain, echo) = channel(
        clients, uniq, [(0, tags), (1, tags), (1, ()), (0, (*tags, "echo-message"))]
    )
    before = router_messages(platform)
    a.send(f"@+typing=active TAGMSG {chan}")
    got = b.expect(by(a.nick) + rf"TAGMSG :?{esc(chan)}$")
    assert got.tags.get("+typing") == "active", got.raw
    echo.expect(by(a.nick) + rf"TAGMSG :?{esc(chan)}$")
    plain.expect_none("TAGMSG", within=0.5)
    # The sender without echo-message sees nothing; with it, its echo.
    a.expect_none("TAGMSG", within=0.2)
    echo.send(f"@+typing=paused TAGMSG {chan}")
    mine = echo.expect(by(echo.nick) + rf"TAGMSG :?{esc(chan)}$")
    assert mine.tags.get("+typing") == "paused", mine.raw
    b.expect(by(echo.nick) + rf"TAGMSG :?{esc(chan)}$")
    # Old clients' tag name too.
    a.send(f"@+draft/typing=done TAGMSG {chan}")
    got = b.expect(by(a.nick) + rf"TAGMSG :?{esc(chan)}$")
    assert got.tags.get("+draft/typing") == "done", got.raw
    # None of that was a router intent (messages are, and are counted).
    assert router_messages(platform) == before
    a.send(f"PRIVMSG {chan} :counted")
    b.expect(rf"PRIVMSG {esc(chan)} :counted$")
    deadline = time.monotonic() + 5
    while router_messages(platform) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert router_messages(platform) == before + 1
    _, gw_metrics = platform.gateways[1].get("/metrics")
    assert counter(gw_metrics, "gateway_typing_signals_total", 'dir="in"') >= 2


def test_other_tags_and_outsiders_still_go_through_the_router(platform, clients, uniq):
    tags = ("message-tags",)
    chan, (a, b) = channel(clients, uniq, [(0, tags), (1, tags)])
    before = router_messages(platform)
    # A reaction rides along with typing: a TAGMSG for the router.
    a.send(f"@+typing=active;+draft/react=ok TAGMSG {chan}")
    got = b.expect(by(a.nick) + rf"TAGMSG :?{esc(chan)}$")
    assert got.tags.get("+draft/react") == "ok" and "msgid" in got.tags, got.raw
    deadline = time.monotonic() + 5
    while router_messages(platform) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert router_messages(platform) == before + 1
    # Someone outside the channel (+n): the router's refusal, as for any message.
    out = clients.user(uniq("to"), caps=tags)
    out.send(f"@+typing=active TAGMSG {chan}")
    out.expect(out.num("404") + rf"{esc(chan)} ")
    a.expect_none("TAGMSG", within=0.5)


def test_typing_follows_membership_on_each_gateway(clients, uniq):
    tags = ("message-tags",)
    chan, (a, b) = channel(clients, uniq, [(0, tags), (1, tags)])
    # b's gateway had its only member leave, then come back: it listens again.
    b.send(f"PART {chan}")
    b.expect(by(b.nick) + rf"PART :?{esc(chan)}")
    a.send(f"@+typing=active TAGMSG {chan}")
    b.expect_none("TAGMSG", within=0.5)
    b.join(chan)
    a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}$")
    a.send(f"@+typing=active TAGMSG {chan}")
    b.expect(by(a.nick) + rf"TAGMSG :?{esc(chan)}$")
    # A room with the same name in another case is the same room.
    a.send(f"@+typing=paused TAGMSG {chan.upper()}")
    b.expect(by(a.nick) + r"TAGMSG :?\S+$")


def test_xmpp_chat_states_in_a_room_are_typing_signals(platform, clients, agents, uniq):
    room = uniq("xtyp")
    chan = "#" + room
    irc = clients.user(uniq("ti"), gw=1, caps=("message-tags",))
    irc.join(chan)
    name, pw = create_account(platform, uniq, "xt")
    alice = agents(platform, name, pw, gw=0)
    alice.send(f"<presence to='{room}@{MUC}/{name}'><x xmlns='http://jabber.org/protocol/muc'>"
               "<history maxstanzas='0'/></x></presence>")
    alice.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")
    irc.expect(by(name) + rf"JOIN :?{esc(chan)}")
    before = router_messages(platform)
    alice.send(f"<message to='{room}@{MUC}' type='groupchat'>"
               "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    got = irc.expect(by(name) + rf"TAGMSG :?{esc(chan)}$")
    assert got.tags.get("+typing") == "active", got.raw
    irc.send(f"@+typing=paused TAGMSG {chan}")
    alice.expect(lambda s: s.tag == C + "message" and s.find(CHATSTATES + "paused") is not None,
                 what="the IRC user's paused chat state")
    assert router_messages(platform) == before
