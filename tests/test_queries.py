"""Queries: WHO, WHOIS, ISON, USERHOST, LUSERS, MOTD, VERSION, TIME."""

from __future__ import annotations

import time

from harness.raw import by, esc


def pair_in_channel(clients, uniq):
    chan = "#" + uniq("q")
    a = clients.user(uniq("qa"), user="auser", realname="Alice Query")
    a.join(chan)
    b = clients.user(uniq("qb"), gw=1, user="buser", realname="Bob Query")
    b.join(chan)
    a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}$")
    return chan, a, b


def test_who_channel(clients, uniq):
    chan, a, b = pair_in_channel(clients, uniq)
    a.send(f"WHO {chan}")
    end = a.expect(a.num("315") + rf"{esc(chan)} :")
    rows = {ln.params[5]: ln for ln in a.collect(a.num("352"), 100, 0.01) if ln.n < end.n}
    assert set(rows) == {a.nick, b.nick}, f"352 per member: {[r.raw for r in rows.values()]}"
    ra, rb = rows[a.nick], rows[b.nick]
    # <me> <chan> <user> <host> <server> <nick> <flags> :<hops> <realname>
    assert ra.params[1] == chan and rb.params[1] == chan
    assert ra.params[2].endswith("auser") and rb.params[2].endswith("buser"), (ra.raw, rb.raw)
    assert ra.params[6] == "H@" and rb.params[6] == "H", (ra.raw, rb.raw)
    assert rb.params[7] == "0 Bob Query", rb.raw


def test_who_nick(clients, uniq):
    chan, a, b = pair_in_channel(clients, uniq)
    a.send(f"WHO {b.nick}")
    row = a.expect(a.num("352") + rf"\S+ \S+ \S+ \S+ {esc(b.nick)} ")
    a.expect(a.num("315") + rf"{esc(b.nick)} :")
    assert row.params[2].endswith("buser") and row.params[-1].endswith("Bob Query"), row.raw
    a.send("WHO nobody-here-xyz")
    a.expect(a.num("315") + r"nobody-here-xyz :")
    a.expect_none(a.num("352"), within=0.2)


def test_whois(clients, uniq):
    chan, a, b = pair_in_channel(clients, uniq)
    # the session record lists rooms once the gateway saw the JOIN: poll briefly
    deadline = time.monotonic() + 5
    while True:
        a.send(f"WHOIS {b.nick}")
        end = a.expect(a.num("318") + rf"{esc(b.nick)} :")
        lines = {ln.command: ln for ln in a.drain() if ln.n < end.n}
        if "319" in lines and chan in lines["319"].text.split() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "311" in lines, f"no 311 in {[ln.raw for ln in lines.values()]}"
    user = lines["311"]
    assert user.params[1] == b.nick and user.params[2].endswith("buser"), user.raw
    assert user.params[-1] == "Bob Query", user.raw
    assert "319" in lines and any(ch.lstrip("@+") == chan for ch in lines["319"].text.split()), (
        f"319 must list {chan}: {lines.get('319')}")
    assert "312" in lines and lines["312"].params[1] == b.nick, lines.get("312")

    a.send("WHOIS nobody-here-xyz")
    a.expect(a.num("401") + r"nobody-here-xyz :")
    a.expect(a.num("318") + r"nobody-here-xyz :")


def test_ison(clients, uniq):
    a = clients.user(uniq("is"))
    b = clients.user(uniq("isb"), gw=1)
    a.send(f"ISON {b.nick.upper()} nobody-here-xyz {a.nick}")
    reply = a.expect(a.num("303"))
    assert sorted(reply.text.split()) == sorted([b.nick, a.nick]), f"canonical nicks of those online: {reply.raw}"


def test_userhost(clients, uniq):
    a = clients.user(uniq("uh"))
    b = clients.user(uniq("uhb"), gw=1, user="buser")
    a.send(f"USERHOST {b.nick}")
    reply = a.expect(a.num("302"))
    assert reply.text.strip().startswith(f"{b.nick}=+") and "buser@" in reply.text, reply.raw
    b.send("AWAY :gone")
    b.expect(b.num("306"))
    a.send(f"USERHOST {b.nick}")
    reply = a.expect(a.num("302"))
    assert reply.text.strip().startswith(f"{b.nick}=-"), f"away shows as -: {reply.raw}"


def lusers(client) -> dict[str, object]:
    client.send("LUSERS")
    end = client.expect(client.num("266"))
    return {ln.command: ln for ln in client.drain() if ln.n < end.n} | {"266": end}


def test_lusers(clients, uniq):
    a = clients.user(uniq("lu"))
    clients.user(uniq("lub"), gw=1)
    # cluster-wide counts may be cached for a few seconds: poll briefly
    deadline = time.monotonic() + 8
    while True:
        got = lusers(a)
        # 252 (operators) and 254 (channels) may be left out when zero (Modern IRC)
        for code in ("251", "255", "265"):
            assert code in got, f"LUSERS lacks {code}: {sorted(got)}"
        # "There are <users> users and <invisible> invisible on <servers> servers"
        numbers = [int(w) for w in got["251"].text.split() if w.isdigit()]
        assert len(numbers) >= 2, got["251"].raw
        if numbers[0] + numbers[1] >= 2:
            break
        assert time.monotonic() < deadline, f"251 must count both users of this test: {got['251'].raw}"
        time.sleep(0.5)


def test_motd(clients, uniq):
    a = clients.user(uniq("mo"))
    a.send("MOTD")
    end = a.expect(a.num("(?:376|422)"))
    if end.command == "376":
        a.expect(a.num("375"))
        a.expect(a.num("372"))


def test_version(clients, uniq):
    a = clients.user(uniq("ve"))
    a.send("VERSION")
    reply = a.expect(a.num("351"))
    assert len(reply.params) >= 3, reply.raw


def test_time(clients, uniq):
    a = clients.user(uniq("ti"))
    a.send("TIME")
    reply = a.expect(a.num("391"))
    assert len(reply.params) >= 3 and reply.text, reply.raw


def test_whox_gives_the_fields_asked_for(platform, clients, uniq):
    """WHO <mask> %fields[,token] (ISUPPORT WHOX): 354 lines with the fields
    in the extension's order, accounts as `0` when logged out, the token
    echoed; a channel's members from the router, a nick from the registry."""
    from harness.accounts import sasl_connect

    name, pw = uniq("wx"), "pw-" + uniq("whox")
    assert platform.chatctl("account", "create", name, stdin=pw + "\n").returncode == 0
    logged = clients.connect(1)
    assert sasl_connect(logged, name, name, pw)[0] == "903"
    guest = clients.user(uniq("wg"))
    chan = "#" + uniq("whox")
    logged.send(f"JOIN {chan}")
    logged.expect(rf" 366 {esc(name)} {esc(chan)} ")
    guest.join(chan)
    isupport = " ".join(ln.raw for ln in guest.burst if " 005 " in ln.raw)
    assert " WHOX" in isupport, isupport

    me = esc(guest.nick)
    guest.send(f"WHO {chan} %tcnfa,42")
    rows = {}
    for _ in range(2):
        ln = guest.expect(rf" 354 {me} 42 {esc(chan)} ")
        rows[ln.params[3]] = ln.params[4:]
    guest.expect(rf" 315 {me} {esc(chan)} ")
    assert rows[name] == ["H@", name] and rows[guest.nick] == ["H", "0"], rows
    guest.send(f"WHO {name} %nuar")
    ln = guest.expect(rf" 354 {me} ")
    assert ln.params[1:] == [ln.params[1], name, name, f"SASL {name}"], ln.raw
    assert ln.params[1].lstrip("~") == name[:10], ln.raw
    guest.expect(rf" 315 {me} {esc(name)} ")
