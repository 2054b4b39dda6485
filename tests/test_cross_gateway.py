"""Two gateways, one room: everything a member does on gateway A is seen by
members on gateway B and back; and the gateway queues' room bindings follow
the first JOIN and the last PART on each gateway."""

from __future__ import annotations

import time

from harness.raw import by, esc


def test_everything_crosses_gateways(clients, uniq):
    chan = "#" + uniq("cross")
    a = clients.user(uniq("ga"), gw=0)
    b = clients.user(uniq("gb"), gw=1)
    c = clients.user(uniq("gc"), gw=1)
    d = clients.user(uniq("gd"), gw=1)
    a.join(chan)
    for x in (b, c, d):
        x.join(chan)
        a.expect(by(x.nick) + rf"JOIN :?{esc(chan)}$")
    assert f"@{a.nick}" in b.names(chan)

    b.send(f"PRIVMSG {chan} :b to a")
    a.expect(by(b.nick) + rf"PRIVMSG {esc(chan)} :b to a$")
    a.send(f"PRIVMSG {chan} :a to b")
    b.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :a to b$")
    a.send(f"NOTICE {chan} :a notice")
    b.expect(by(a.nick) + rf"NOTICE {esc(chan)} :a notice$")
    a.send(f"TOPIC {chan} :cross topic")
    b.expect(by(a.nick) + rf"TOPIC {esc(chan)} :cross topic$")

    old = b.nick
    new = uniq("gbn")
    b.send(f"NICK {new}")
    b.expect(by(old) + rf"NICK :?{esc(new)}$")
    a.expect(by(old) + rf"NICK :?{esc(new)}$")
    b.nick = new
    b.send(f"PRIVMSG {chan} :renamed")
    a.expect(by(new) + rf"PRIVMSG {esc(chan)} :renamed$")

    a.send(f"KICK {chan} {c.nick} :out")
    for x in (a, b, c):
        x.expect(by(a.nick) + rf"KICK {esc(chan)} {esc(c.nick)} :out$")

    b.send(f"PART {chan} :leaving")
    a.expect(by(new) + rf"PART {esc(chan)} :leaving$")

    d.send("QUIT :see you")
    a.expect(by(d.nick) + r"QUIT :Quit: see you$")
    a.send(f"PRIVMSG {chan} :alone now")
    a.expect_none(r"alone now", within=0.1)
    assert a.names(chan) == [f"@{a.nick}"]


def test_nick_change_seen_once_by_someone_sharing_two_channels(clients, uniq):
    c1, c2 = "#" + uniq("n1"), "#" + uniq("n2")
    a = clients.user(uniq("sa"), gw=0)
    b = clients.user(uniq("sb"), gw=1)
    for chan in (c1, c2):
        a.join(chan)
        b.join(chan)
        a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}$")
    new = uniq("sbn")
    b.send(f"NICK {new}")
    a.expect(by(b.nick) + rf"NICK :?{esc(new)}$")
    a.expect_none(r" NICK ", within=1.5)
    b.expect(by(b.nick) + rf"NICK :?{esc(new)}$")
    b.expect_none(r" NICK ", within=0.5)


def room_key(channel: str) -> str:
    """The routing key of a channel's room (folded, `[a-z0-9_-]` kept, other
    bytes as `=XX`)."""
    out = []
    for ch in channel.lstrip("#").lower().encode():
        c = chr(ch)
        out.append(c if c.isascii() and (c.isalnum() or c in "_-") else f"={ch:02X}")
    return "room." + "".join(out)


def bound(platform, gateway_id: str, key: str) -> bool:
    return any(
        src == "chat.rooms" and dest == f"gateway.{gateway_id}" and kind == "queue" and rk == key
        for src, dest, kind, rk in platform.iso.bindings()
    )


def wait_bound(platform, gateway_id: str, key: str, want: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while bound(platform, gateway_id, key) != want:
        assert time.monotonic() < deadline, (
            f"gateway.{gateway_id} {'not ' if want else 'still '}bound to chat.rooms with {key} after {timeout}s; "
            f"bindings: {[b for b in platform.iso.bindings() if b[0] == 'chat.rooms']}"
        )
        time.sleep(0.3)


def test_room_bindings_follow_first_join_and_last_part(platform, clients, uniq):
    chan = "#Bind." + uniq("X")  # a dot and capitals: key is folded and escaped
    key = room_key(chan)
    assert key == "room.bind=2E" + chan[len("#Bind."):].lower(), key
    gw_a, gw_b = platform.gateways[0].gateway_id, platform.gateways[1].gateway_id
    a1 = clients.user(uniq("ba"), gw=0)
    a2 = clients.user(uniq("bb"), gw=0)
    b1 = clients.user(uniq("bc"), gw=1)

    a1.join(chan)
    # the router binds before it publishes the JOIN: no polling needed here
    assert bound(platform, gw_a, key), f"gateway.{gw_a} not bound with {key} right after the first JOIN"
    assert not bound(platform, gw_b, key), f"gateway.{gw_b} bound although it has no member in {chan}"

    a2.join(chan)
    b1.join(chan)
    assert bound(platform, gw_b, key)

    a1.send(f"PART {chan}")
    a1.expect(by(a1.nick) + rf"PART {esc(chan)}")
    time.sleep(0.5)
    assert bound(platform, gw_a, key), "one member left on A: still bound"

    a2.send(f"PART {chan}")
    a2.expect(by(a2.nick) + rf"PART {esc(chan)}")
    wait_bound(platform, gw_a, key, want=False)
    assert bound(platform, gw_b, key), "B still has a member"
