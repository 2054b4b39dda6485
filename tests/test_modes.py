"""Channel modes: +o +v (multi-prefix), +n, +t, +m, +i, +k, +l, +b, +s,
the MODE query (324/329) and mode errors (472, 482)."""

from __future__ import annotations

import time

from harness.raw import by, esc


def setup_channel(clients, uniq, *, others=1, gws=(1,), caps_for_others=()):
    """An op (creator, gateway 0) and `others` members; returns (op, [members], chan)."""
    op = clients.user(uniq("mop"))
    chan = "#" + uniq("mode")
    op.join(chan)
    members = []
    for i in range(others):
        m = clients.user(uniq("mem"), gw=gws[i % len(gws)], caps=caps_for_others)
        m.join(chan)
        op.expect(by(m.nick) + rf"JOIN :?{esc(chan)}$")
        members.append(m)
    return op, members, chan


def set_mode(op, chan: str, change: str, expect: str | None = None, watchers=()) -> None:
    """MODE <chan> <change>; waits for the MODE line at the op and watchers."""
    op.send(f"MODE {chan} {change}")
    pattern = by(op.nick) + rf"MODE {esc(chan)} {expect or esc(change)}$"
    op.expect(pattern)
    for w in watchers:
        w.expect(pattern)


def test_op_and_voice_with_multi_prefix(clients, uniq):
    op, (mp,), chan = setup_channel(clients, uniq, caps_for_others=("multi-prefix",))
    plain2 = clients.user(uniq("plain"), gw=0)  # without multi-prefix
    plain2.join(chan)
    set_mode(op, chan, f"+o {mp.nick}", rf"\+o :?{esc(mp.nick)}", watchers=(mp, plain2))
    set_mode(op, chan, f"+v {mp.nick}", rf"\+v :?{esc(mp.nick)}", watchers=(mp, plain2))
    assert f"@+{mp.nick}" in mp.names(chan), "multi-prefix client must see @+"
    plain_view = plain2.names(chan)
    assert f"@{mp.nick}" in plain_view and f"@+{mp.nick}" not in plain_view, plain_view

    set_mode(op, chan, f"-o {mp.nick}", rf"-o :?{esc(mp.nick)}", watchers=(plain2,))
    assert f"+{mp.nick}" in plain2.names(chan)
    # a voiced non-op cannot give modes
    mp.send(f"MODE {chan} +o {plain2.nick}")
    mp.expect(mp.num("482") + rf"{esc(chan)} :")


def test_no_external_messages(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    outsider = clients.user(uniq("out"))
    outsider.send(f"PRIVMSG {chan} :from outside")
    outsider.expect(outsider.num("404") + rf"{esc(chan)} :")
    member.expect_none(r"from outside", within=0.5)

    set_mode(op, chan, "-n", watchers=(member,))
    outsider.send(f"PRIVMSG {chan} :outside allowed")
    member.expect(by(outsider.nick) + rf"PRIVMSG {esc(chan)} :outside allowed$")
    outsider.expect_none(r" 404 ", within=0.3)


def test_topic_lock(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    set_mode(op, chan, "-t", watchers=(member,))
    member.send(f"TOPIC {chan} :member topic")
    op.expect(by(member.nick) + rf"TOPIC {esc(chan)} :member topic$")
    set_mode(op, chan, "+t", watchers=(member,))
    member.send(f"TOPIC {chan} :again")
    member.expect(member.num("482") + rf"{esc(chan)} :")


def test_moderated(clients, uniq):
    op, (quiet, listener), chan = setup_channel(clients, uniq, others=2, gws=(1, 0))
    set_mode(op, chan, "+m", watchers=(quiet, listener))
    quiet.send(f"PRIVMSG {chan} :can anyone hear me")
    quiet.expect(quiet.num("404") + rf"{esc(chan)} :")
    listener.expect_none(r"can anyone hear me", within=0.5)

    op.send(f"PRIVMSG {chan} :ops can always talk")
    listener.expect(by(op.nick) + rf"PRIVMSG {esc(chan)} :ops can always talk$")

    set_mode(op, chan, f"+v {quiet.nick}", rf"\+v :?{esc(quiet.nick)}", watchers=(quiet,))
    quiet.send(f"PRIVMSG {chan} :voiced now")
    listener.expect(by(quiet.nick) + rf"PRIVMSG {esc(chan)} :voiced now$")


def test_invite_only(clients, uniq):
    op, _, chan = setup_channel(clients, uniq, others=0)
    set_mode(op, chan, "+i")
    guest = clients.user(uniq("gst"), gw=1)
    guest.send(f"JOIN {chan}")
    guest.expect(guest.num("473") + rf"{esc(chan)} :")
    set_mode(op, chan, "-i")
    guest.join(chan)


def test_key(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    set_mode(op, chan, "+k sekrit", r"\+k :?sekrit", watchers=(member,))
    joiner = clients.user(uniq("kj"), gw=1)
    joiner.send(f"JOIN {chan}")
    joiner.expect(joiner.num("475") + rf"{esc(chan)} :")
    joiner.send(f"JOIN {chan} wrong")
    joiner.expect(joiner.num("475") + rf"{esc(chan)} :")
    joiner.join(chan, key="sekrit")

    set_mode(op, chan, "-k sekrit", r"-k(?: :?\S+)?", watchers=(member,))
    late = clients.user(uniq("kl"))
    late.join(chan)


def test_limit(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    set_mode(op, chan, "+l 2", r"\+l :?2", watchers=(member,))
    third = clients.user(uniq("lim"), gw=1)
    third.send(f"JOIN {chan}")
    third.expect(third.num("471") + rf"{esc(chan)} :")
    set_mode(op, chan, "-l", watchers=(member,))
    third.join(chan)


def test_key_and_limit_need_their_parameter(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    for mode in ("+k", "+l"):
        op.send(f"MODE {chan} {mode}")
        op.expect(op.num("461") + r"MODE :")
        member.expect_none(rf" MODE {esc(chan)} ", within=0.5)
    op.send(f"MODE {chan}")
    line = op.expect(op.num("324") + rf"{esc(chan)} ")
    assert "k" not in line.params[2] and "l" not in line.params[2], line


def test_bans(clients, uniq):
    op, (member, speaker), chan = setup_channel(clients, uniq, others=2, gws=(1, 0))
    banned = clients.user(uniq("ban"), gw=1)
    mask = f"{banned.nick}!*@*"
    set_mode(op, chan, f"+b {mask}", rf"\+b :?{esc(mask)}", watchers=(member,))
    banned.send(f"JOIN {chan}")
    banned.expect(banned.num("474") + rf"{esc(chan)} :")

    op.send(f"MODE {chan} +b")
    entry = op.expect(op.num("367") + rf"{esc(chan)} {esc(mask)}(?: |$)")
    end = op.expect(op.num("368") + rf"{esc(chan)} :")
    assert entry.n < end.n
    member.send(f"MODE {chan} b")  # anyone may list bans
    member.expect(member.num("367") + rf"{esc(chan)} {esc(mask)}(?: |$)")
    member.expect(member.num("368") + rf"{esc(chan)} :")

    # a banned member (no voice, no op) cannot speak
    smask = f"{speaker.nick}!*@*"
    set_mode(op, chan, f"+b {smask}", rf"\+b :?{esc(smask)}", watchers=(member,))
    speaker.send(f"PRIVMSG {chan} :am I banned")
    speaker.expect(speaker.num("404") + rf"{esc(chan)} :")
    member.expect_none(r"am I banned", within=0.5)

    set_mode(op, chan, f"-b {mask}", rf"-b :?{esc(mask)}", watchers=(member,))
    banned.join(chan)


def test_secret_channels_are_hidden_from_list(clients, uniq):
    op, _, chan = setup_channel(clients, uniq, others=0)
    outsider = clients.user(uniq("so"), gw=1)
    set_mode(op, chan, "+s")
    # LIST reads room records written after each batch: poll briefly
    deadline = time.monotonic() + 5
    while chan in outsider.list_channels():
        assert time.monotonic() < deadline, f"{chan} is +s but still in a non-member's LIST"
        time.sleep(0.2)
    assert chan in op.list_channels(), "a member sees its own secret channel in LIST"
    outsider.expect_none(rf" 322 \S+ {esc(chan)} ", within=0.1)


def test_mode_query(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    op.send(f"MODE {chan}")
    modes = op.expect(op.num("324") + rf"{esc(chan)} ")
    assert modes.params[2].lstrip(":") == "+nt", f"a new channel is +nt: {modes.raw}"
    created = op.expect(op.num("329") + rf"{esc(chan)} :?(\d+)$")
    ts = int(created.params[-1])
    assert abs(ts - time.time()) < 300, f"329 is the creation time in seconds: {created.raw}"

    set_mode(op, chan, "+k sekrit", r"\+k :?sekrit", watchers=(member,))
    set_mode(op, chan, "+l 5", r"\+l :?5", watchers=(member,))
    member.send(f"MODE {chan}")
    modes = member.expect(member.num("324") + rf"{esc(chan)} ")
    assert modes.params[2:] == ["+ntkl", "sekrit", "5"], modes.raw


def test_unknown_mode_char(clients, uniq):
    op, _, chan = setup_channel(clients, uniq, others=0)
    op.send(f"MODE {chan} +z")
    op.expect(op.num("472") + r"z :")


def test_non_op_cannot_change_modes(clients, uniq):
    op, (member,), chan = setup_channel(clients, uniq)
    member.send(f"MODE {chan} +m")
    member.expect(member.num("482") + rf"{esc(chan)} :")
    op.expect_none(rf"MODE {esc(chan)} \+m", within=0.5)
