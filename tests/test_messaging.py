"""PRIVMSG, NOTICE and TAGMSG: channels and nicks, on one gateway and
across both; echo-message, message tags and server-time; errors; AWAY."""

from __future__ import annotations

import re

from harness.libclient import LibClient
from harness.raw import by, esc

TIME_RX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def channel_with(clients, uniq, specs):
    """Joins one client per (gateway, caps) in `specs` to a fresh channel;
    every member has seen every JOIN before this returns."""
    chan = "#" + uniq("msg")
    members = []
    for gw, caps in specs:
        c = clients.user(uniq("m"), gw=gw, caps=caps)
        c.join(chan)
        for earlier in members:
            earlier.expect(by(c.nick) + rf"JOIN :?{esc(chan)}$")
        members.append(c)
    return chan, members


def test_channel_privmsg_and_notice_reach_others_but_not_the_sender(clients, uniq):
    chan, (a, b, c) = channel_with(clients, uniq, [(0, ()), (0, ()), (1, ())])
    a.send(f"PRIVMSG {chan} :hello channel")
    a.send(f"NOTICE {chan} :notice channel")
    for other in (b, c):
        other.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :hello channel$")
        other.expect(by(a.nick) + rf"NOTICE {esc(chan)} :notice channel$")
    a.expect_none(r"(?:hello|notice) channel", within=1.0)


def test_echo_message_carries_the_same_msgid(clients, uniq):
    chan, (a, b, c) = channel_with(
        clients, uniq,
        [(0, ("echo-message", "message-tags")), (0, ("message-tags",)), (1, ("message-tags",))],
    )
    a.send(f"PRIVMSG {chan} :echo me")
    echo = a.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :echo me$")
    seen_b = b.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :echo me$")
    seen_c = c.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :echo me$")
    assert echo.tags.get("msgid"), f"no msgid on the echo: {echo.raw}"
    assert echo.tags["msgid"] == seen_b.tags.get("msgid") == seen_c.tags.get("msgid"), (
        echo.raw, seen_b.raw, seen_c.raw)

    a.send(f"NOTICE {chan} :echo notice")
    a.expect(by(a.nick) + rf"NOTICE {esc(chan)} :echo notice$")


def test_tags_only_for_clients_that_negotiated_them(clients, uniq):
    chan, (sender, plain, timed, tagged, both) = channel_with(
        clients, uniq,
        [
            (0, ("message-tags",)),
            (0, ()),
            (1, ("server-time",)),
            (1, ("message-tags",)),
            (0, ("server-time", "message-tags")),
        ],
    )
    sender.send(f"@+client-tag=x PRIVMSG {chan} :tagged text")
    pattern = by(sender.nick) + rf"PRIVMSG {esc(chan)} :tagged text$"
    p, t, g, bo = (x.expect(pattern) for x in (plain, timed, tagged, both))
    assert not p.raw.startswith("@"), f"no tags without caps: {p.raw}"
    assert set(t.tags) == {"time"} and TIME_RX.match(t.tags["time"]), f"server-time only: {t.raw}"
    assert "msgid" in g.tags and "time" not in g.tags, f"message-tags only: {g.raw}"
    assert g.tags.get("+client-tag") == "x", f"client tags go to message-tags clients: {g.raw}"
    assert "+client-tag" not in t.tags, t.raw
    assert TIME_RX.match(bo.tags.get("time", "")) and bo.tags.get("msgid") == g.tags["msgid"], bo.raw


def test_private_messages_same_and_other_gateway(clients, uniq):
    a = clients.user(uniq("pa"), caps=("echo-message", "message-tags"))
    b = clients.user(uniq("pb"), gw=0, caps=("message-tags",))
    c = clients.user(uniq("pc"), gw=1, caps=("message-tags",))
    for target in (b, c):
        a.send(f"PRIVMSG {target.nick} :hi {target.nick}")
        got = target.expect(by(a.nick) + rf"PRIVMSG {esc(target.nick)} :hi {esc(target.nick)}$")
        echo = a.expect(by(a.nick) + rf"PRIVMSG {esc(target.nick)} :hi {esc(target.nick)}$")
        assert got.tags.get("msgid") and got.tags["msgid"] == echo.tags.get("msgid"), (got.raw, echo.raw)
        a.send(f"NOTICE {target.nick} :note {target.nick}")
        target.expect(by(a.nick) + rf"NOTICE {esc(target.nick)} :note {esc(target.nick)}$")
    c.send(f"PRIVMSG {a.nick} :back from the other side")
    a.expect(by(c.nick) + rf"PRIVMSG {esc(a.nick)} :back from the other side$")
    # nicks are case-insensitive
    c.send(f"PRIVMSG {a.nick.upper()} :shouting")
    a.expect(by(c.nick) + r"PRIVMSG \S+ :shouting$")


def test_several_targets_in_one_privmsg(clients, uniq):
    chan, (a, m) = channel_with(clients, uniq, [(0, ()), (1, ())])
    b = clients.user(uniq("tb"), gw=0)
    c = clients.user(uniq("tc"), gw=1)
    a.send(f"PRIVMSG {b.nick},{c.nick},{chan} :to many")
    b.expect(by(a.nick) + rf"PRIVMSG {esc(b.nick)} :to many$")
    c.expect(by(a.nick) + rf"PRIVMSG {esc(c.nick)} :to many$")
    m.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :to many$")
    a.expect_none(r" 40[17] ", within=0.3)


def test_too_many_targets_gets_407(clients, uniq):
    a = clients.user(uniq("tm"))
    others = [clients.user(uniq("tt")) for _ in range(5)]
    a.send(f"PRIVMSG {','.join(o.nick for o in others)} :five is too many")
    a.expect(a.num("407") + r"\S+ :")


def test_message_errors(clients, uniq):
    a = clients.user(uniq("err"))
    b = clients.user(uniq("erb"), gw=1)
    a.send("PRIVMSG nosuchnick123 :hello?")
    a.expect(a.num("401") + r"nosuchnick123 :")
    a.send(f"PRIVMSG {b.nick}")
    a.expect(a.num("412") + r":")
    a.send(f"PRIVMSG {b.nick} :")
    a.expect(a.num("412") + r":")
    a.send("PRIVMSG")
    a.expect(a.num("411") + r":")
    a.send("NOTICE nosuchnick123 :quiet")  # never an automatic reply to NOTICE
    a.expect_none(r" 401 ", within=0.8)
    b.expect_none(r"PRIVMSG", within=0.1)


def test_cannot_send_to_channel_404(clients, uniq):
    chan, (member,) = channel_with(clients, uniq, [(0, ())])
    outsider = clients.user(uniq("cs"), gw=1)
    outsider.send(f"PRIVMSG {chan} :let me in")
    outsider.expect(outsider.num("404") + rf"{esc(chan)} :")
    outsider.send(f"NOTICE {chan} :notice from outside")
    outsider.expect_none(r" 404 ", within=0.8)
    member.expect_none(r"let me in|notice from outside", within=0.1)


def test_away(clients, uniq):
    a = clients.user(uniq("aw"))
    b = clients.user(uniq("ab"), gw=1)
    b.send("AWAY :out for lunch")
    b.expect(b.num("306") + r":")
    a.send(f"PRIVMSG {b.nick} :are you there")
    a.expect(a.num("301") + rf"{esc(b.nick)} :out for lunch$")
    b.expect(by(a.nick) + rf"PRIVMSG {esc(b.nick)} :are you there$")
    b.send("AWAY")
    b.expect(b.num("305") + r":")
    a.send(f"PRIVMSG {b.nick} :back?")
    b.expect(by(a.nick) + rf"PRIVMSG {esc(b.nick)} :back\?$")
    a.expect_none(r" 301 ", within=0.5)


def test_tagmsg_typing_reaches_message_tags_clients_only(clients, uniq):
    chan, (a, tagged, plain) = channel_with(
        clients, uniq, [(0, ("message-tags",)), (1, ("message-tags",)), (0, ())]
    )
    a.send(f"@+typing=active TAGMSG {chan}")
    got = tagged.expect(by(a.nick) + rf"TAGMSG :?{esc(chan)}$")
    assert got.tags.get("+typing") == "active", got.raw
    plain.expect_none(r"TAGMSG", within=1.0)
    # to a nick too
    a.send(f"@+typing=paused TAGMSG {tagged.nick}")
    got = tagged.expect(by(a.nick) + rf"TAGMSG :?{esc(tagged.nick)}$")
    assert got.tags.get("+typing") == "paused", got.raw


def test_irc_library_client_chats(clients, uniq, platform):
    chan = "#" + uniq("lib")
    raw = clients.user(uniq("rw"), gw=0)
    raw.join(chan)
    lib = LibClient("127.0.0.1", platform.gateways[1].irc_port, uniq("lib"))
    try:
        lib.wait_for("welcome", timeout=10)
        lib.conn.join(chan)
        lib.wait_for("join", lambda e: e.target == chan and e.source.nick == lib.nick)
        lib.wait_for("namreply", lambda e: raw.nick in e.arguments[-1])
        raw.expect(by(lib.nick) + rf"JOIN :?{esc(chan)}$")
        raw.send(f"PRIVMSG {chan} :hello library")
        ev = lib.wait_for("pubmsg", lambda e: e.target == chan)
        assert ev.source.nick == raw.nick and ev.arguments == ["hello library"]
        raw.send(f"PRIVMSG {lib.nick} :private to library")
        ev = lib.wait_for("privmsg")
        assert ev.arguments == ["private to library"]
        lib.conn.privmsg(chan, "hello from the library")
        raw.expect(by(lib.nick) + rf"PRIVMSG {esc(chan)} :hello from the library$")
    finally:
        lib.close()
