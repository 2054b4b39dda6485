"""Channel commands: JOIN (creator op, topic on join, keys, JOIN 0), PART,
TOPIC, NAMES, LIST, KICK, INVITE and their errors."""

from __future__ import annotations

import time

from harness.raw import by, esc


def test_join_creates_channel_with_creator_as_op(clients, uniq):
    nick, chan = uniq("op"), "#" + uniq("create")
    c = clients.user(nick)
    c.send(f"JOIN {chan}")
    join = c.expect(by(nick) + rf"JOIN :?{esc(chan)}$")
    names = c.expect(c.num("353") + rf"[=*@] {esc(chan)} :")
    end = c.expect(c.num("366") + rf"{esc(chan)} :")
    assert names.text.split() == [f"@{nick}"], names.raw
    assert join.n < names.n < end.n, "JOIN, then 353, then 366"
    # a second JOIN of the same channel does nothing
    c.send(f"JOIN {chan}")
    c.expect_none(rf" JOIN :?{esc(chan)}$", within=0.8)


def test_topic_is_sent_on_join(clients, uniq):
    a, b, chan = uniq("ta"), uniq("tb"), "#" + uniq("topic")
    ca = clients.user(a)
    ca.join(chan)
    ca.send(f"TOPIC {chan} :the topic of the day")
    ca.expect(by(a) + rf"TOPIC {esc(chan)} :the topic of the day$")

    cb = clients.user(b, gw=1)
    cb.send(f"JOIN {chan}")
    join = cb.expect(by(b) + rf"JOIN :?{esc(chan)}$")
    topic = cb.expect(cb.num("332") + rf"{esc(chan)} :the topic of the day$")
    who_set = cb.expect(cb.num("333") + rf"{esc(chan)} {esc(a)}\S* \d+$")
    names = cb.expect(cb.num("353") + rf"[=*@] {esc(chan)} :")
    end = cb.expect(cb.num("366") + rf"{esc(chan)} ")
    assert join.n < topic.n < who_set.n < names.n < end.n
    assert sorted(names.text.split()) == sorted([f"@{a}", b]), names.raw


def test_join_several_channels_with_keys(clients, uniq):
    a, b = uniq("ka"), uniq("kb")
    c1, c2, c3 = "#" + uniq("k1"), "#" + uniq("k2"), "#" + uniq("k3")
    ca = clients.user(a)
    for chan, key in ((c1, "key1"), (c2, "key2")):
        ca.join(chan)
        ca.send(f"MODE {chan} +k {key}")
        ca.expect(by(a) + rf"MODE {esc(chan)} \+k :?{key}$")
    cb = clients.user(b)
    cb.send(f"JOIN {c1},{c2},{c3} key1,key2")
    for chan in (c1, c2, c3):
        cb.expect(by(b) + rf"JOIN :?{esc(chan)}$")
        cb.expect(cb.num("366") + rf"{esc(chan)} ")
    cb.expect_none(r" 475 ", within=0.3)


def test_join_zero_parts_every_channel(clients, uniq):
    a, b = uniq("za"), uniq("zb")
    c1, c2 = "#" + uniq("z1"), "#" + uniq("z2")
    ca = clients.user(a)
    ca.join(c1)
    cb = clients.user(b, gw=1)
    cb.join(c1)
    cb.join(c2)
    ca.expect(by(b) + rf"JOIN :?{esc(c1)}$")
    cb.send("JOIN 0")
    cb.expect(by(b) + rf"PART {esc(c1)}(?: |$)")
    cb.expect(by(b) + rf"PART {esc(c2)}(?: |$)")
    ca.expect(by(b) + rf"PART {esc(c1)}(?: |$)")
    assert ca.names(c1) == [f"@{a}"]


def test_part_with_reason_is_seen_by_others(clients, uniq):
    a, b, chan = uniq("pa"), uniq("pb"), "#" + uniq("part")
    ca = clients.user(a)
    ca.join(chan)
    cb = clients.user(b)
    cb.join(chan)
    cb.send(f"PART {chan} :gotta go now")
    ca.expect(by(b) + rf"PART {esc(chan)} :gotta go now$")
    cb.expect(by(b) + rf"PART {esc(chan)} :gotta go now$")
    cb.send(f"PRIVMSG {chan} :still here?")
    cb.expect(cb.num("404") + rf"{esc(chan)} :")  # +n: no longer a member


def test_topic_query_set_and_protection(clients, uniq):
    a, b, chan = uniq("toa"), uniq("tob"), "#" + uniq("tp")
    ca = clients.user(a)
    ca.join(chan)
    cb = clients.user(b, gw=1)
    cb.join(chan)
    ca.send(f"TOPIC {chan}")
    ca.expect(ca.num("331") + rf"{esc(chan)} :")

    ca.send(f"TOPIC {chan} :hello topic")
    ca.expect(by(a) + rf"TOPIC {esc(chan)} :hello topic$")
    cb.expect(by(a) + rf"TOPIC {esc(chan)} :hello topic$")

    cb.send(f"TOPIC {chan}")
    cb.expect(cb.num("332") + rf"{esc(chan)} :hello topic$")
    cb.expect(cb.num("333") + rf"{esc(chan)} {esc(a)}\S* \d+$")

    cb.send(f"TOPIC {chan} :not allowed")  # +t is on for new channels
    cb.expect(cb.num("482") + rf"{esc(chan)} :")
    ca.expect_none(r" TOPIC .*not allowed", within=0.5)

    ca.send(f"MODE {chan} -t")
    cb.expect(by(a) + rf"MODE {esc(chan)} -t$")
    cb.send(f"TOPIC {chan} :now allowed")
    ca.expect(by(b) + rf"TOPIC {esc(chan)} :now allowed$")


def test_names_lists_members_with_prefixes(clients, uniq):
    a, b, chan = uniq("na"), uniq("nb"), "#" + uniq("names")
    ca = clients.user(a)
    ca.join(chan)
    cb = clients.user(b, gw=1)
    cb.join(chan)
    assert sorted(ca.names(chan)) == sorted([f"@{a}", b])
    assert sorted(cb.names(chan)) == sorted([f"@{a}", b])


def test_list_shows_count_and_topic(clients, uniq):
    a, b, chan = uniq("la"), uniq("lb"), "#" + uniq("list")
    ca = clients.user(a)
    ca.join(chan)
    cb = clients.user(b, gw=1)
    cb.join(chan)
    ca.send(f"TOPIC {chan} :listed topic")
    ca.expect(by(a) + rf"TOPIC {esc(chan)} :")
    outsider = clients.user(uniq("lo"))
    # LIST reads the room records, written right after each batch: poll briefly
    deadline = time.monotonic() + 5
    while True:
        entries = outsider.list_channels()
        if entries.get(chan, (0, ""))[0] == 2 and "listed topic" in entries[chan][1]:
            break
        assert time.monotonic() < deadline, f"LIST never showed {chan} with 2 users and the topic: {entries.get(chan)}"
        time.sleep(0.2)


def test_list_filters_by_masks_users_and_times(clients, uniq):
    """ELIST=CMNTU: masks and negated masks, user counts, creation and
    topic times (minutes ago)."""
    tag = uniq("el")
    a = clients.user(uniq("ea"))
    for name in ("alpha", "beta", "gamma"):
        a.join(f"#{tag}{name}")
    a.send(f"TOPIC #{tag}beta :a topic")
    a.expect(rf"TOPIC #{tag}beta :a topic$")
    b = clients.user(uniq("eb"), gw=1)
    b.join(f"#{tag}gamma")
    isupport = " ".join(ln.raw for ln in a.burst if " 005 " in ln.raw)
    assert "ELIST=CMNTU" in isupport, isupport
    # LIST reads the room records, each written right after its batch: every
    # listing is polled until it shows what the last JOIN or TOPIC made true
    # (b's JOIN can be seen by b before #gamma's record counts it).
    def listed(args: str, want: set[str]) -> None:
        deadline = time.monotonic() + 5
        while True:
            got = set(a.list_channels(args=args))
            if got == want:
                return
            assert time.monotonic() < deadline, f"LIST {args}: {got}, not {want}"
            time.sleep(0.2)

    listed(f"*{tag}*,!*beta", {f"#{tag}alpha", f"#{tag}gamma"})
    listed(f"*{tag}*,>1", {f"#{tag}gamma"})
    listed(f"*{tag}*,C<10", {f"#{tag}{n}" for n in ("alpha", "beta", "gamma")})
    listed(f"*{tag}*,T<10", {f"#{tag}beta"})
    # What should never be listed is asked once the records are complete.
    assert set(a.list_channels(args=f"*{tag}*,C>10")) == set()


def test_kick(clients, uniq):
    op, victim, other, bystander = uniq("kop"), uniq("kvi"), uniq("kot"), uniq("kby")
    chan = "#" + uniq("kick")
    cop = clients.user(op)
    cop.join(chan)
    cv = clients.user(victim, gw=1)
    cv.join(chan)
    co = clients.user(other, gw=1)
    co.join(chan)
    cby = clients.user(bystander)  # registered, not on the channel

    cop.send(f"KICK {chan} {victim} :behave")
    for c in (cop, cv, co):
        c.expect(by(op) + rf"KICK {esc(chan)} {esc(victim)} :behave$")
    assert sorted(co.names(chan)) == sorted([f"@{op}", other])
    cv.send(f"PRIVMSG {chan} :let me back")
    cv.expect(cv.num("404") + rf"{esc(chan)} :")

    co.send(f"KICK {chan} {op} :coup")  # not an op
    co.expect(co.num("482") + rf"{esc(chan)} :")
    cop.expect_none(r" KICK .*coup", within=0.5)

    cop.send(f"KICK {chan} {bystander}")  # not a member
    cop.expect(cop.num("441") + rf"{esc(bystander)} {esc(chan)} :")
    cby.expect_none(r" KICK ", within=0.3)


def test_invite(clients, uniq):
    op, guest, chan = uniq("iop"), uniq("igu"), "#" + uniq("inv")
    cop = clients.user(op)
    cop.join(chan)
    cop.send(f"MODE {chan} +i")
    cop.expect(by(op) + rf"MODE {esc(chan)} \+i$")
    cg = clients.user(guest, gw=1)
    cg.send(f"JOIN {chan}")
    cg.expect(cg.num("473") + rf"{esc(chan)} :")

    cop.send(f"INVITE {guest} {chan}")
    cop.expect(cop.num("341") + rf"{esc(guest)} :?{esc(chan)}$")
    cg.expect(by(op) + rf"INVITE {esc(guest)} :?{esc(chan)}$")
    cg.join(chan)
    cop.expect(by(guest) + rf"JOIN :?{esc(chan)}$")

    cop.send(f"INVITE {guest} {chan}")
    cop.expect(cop.num("443") + rf"{esc(guest)} {esc(chan)} :")


def test_bad_channel_name_gets_403(clients, uniq):
    c = clients.user(uniq("bad"))
    c.send("JOIN nohash")
    c.expect(c.num("403") + r"nohash :")
    c.send("JOIN #")
    c.expect(c.num("403") + r"# :")
    long_name = "#" + "x" * 60  # CHANNELLEN is 50
    c.send(f"JOIN {long_name}")
    c.expect(c.num("403") + rf"{long_name} :")


def test_part_of_channel_not_joined_gets_442(clients, uniq):
    a, b, chan = uniq("xa"), uniq("xb"), "#" + uniq("notin")
    ca = clients.user(a)
    ca.join(chan)
    cb = clients.user(b)
    cb.send(f"PART {chan}")
    cb.expect(cb.num("442") + rf"{esc(chan)} :")
    ca.expect_none(r" PART ", within=0.3)
