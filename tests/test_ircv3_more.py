"""More IRCv3: away-notify, invite-notify, setname, bot mode, UTF8ONLY.
Notifications are checked across the two gateways (the member who is told
is on the other one), and only clients that negotiated the cap get them."""

from __future__ import annotations

from harness.raw import by, esc


def test_caps_are_offered(clients):
    c = clients.connect()
    caps = c.cap_ls()
    assert {"away-notify", "invite-notify", "setname"} <= caps, caps


def test_away_notify_across_gateways_and_after_join(clients, uniq):
    a, b, plain, chan = uniq("aw"), uniq("ob"), uniq("pl"), "#" + uniq("away")
    ca = clients.user(a)
    cb = clients.user(b, gw=1, caps=("away-notify",))
    cp = clients.user(plain, gw=1)
    for c in (ca, cb, cp):
        c.join(chan)
    ca.send("AWAY :gone fishing")
    ca.expect(ca.num("306"))
    cb.expect(by(a) + "AWAY :gone fishing$")
    ca.send("AWAY")
    ca.expect(ca.num("305"))
    cb.expect(by(a) + "AWAY$")
    # Without the cap nothing; the actor has its numerics only.
    cp.expect_none(r" AWAY", within=0.5)
    ca.expect_none(by(a) + "AWAY", within=0.2)

    # Joining while away: the JOIN, then the AWAY, to members with the cap;
    # and the room knows it (WHO flag G).
    chan2 = "#" + uniq("away2")
    cb.join(chan2)
    ca.send("AWAY :brb")
    ca.expect(ca.num("306"))
    cb.expect(by(a) + "AWAY :brb$")  # (they share the first channel)
    ca.join(chan2)
    join = cb.expect(by(a) + rf"JOIN :?{esc(chan2)}$")
    away = cb.expect(by(a) + "AWAY :brb$")
    assert join.n < away.n
    cb.send(f"WHO {chan2}")
    cb.expect(cb.num("352") + rf"{esc(chan2)} \S+ \S+ \S+ {esc(a)} G")
    cb.expect(cb.num("315"))


def test_invite_notify_reaches_members_with_the_cap(clients, uniq):
    a, b, plain, t, chan = uniq("iv"), uniq("iw"), uniq("ip"), uniq("it"), "#" + uniq("inv")
    ca = clients.user(a, caps=("invite-notify",))
    cb = clients.user(b, gw=1, caps=("invite-notify",))
    cp = clients.user(plain, gw=1)
    ct = clients.user(t, gw=1, caps=("invite-notify",))
    for c in (ca, cb, cp):
        c.join(chan)
    ca.send(f"INVITE {t} {chan}")
    ca.expect(ca.num("341") + rf"{esc(t)} {esc(chan)}$")
    ct.expect(by(a) + rf"INVITE {esc(t)} :?{esc(chan)}$")
    cb.expect(by(a) + rf"INVITE {esc(t)} {esc(chan)}$")
    cp.expect_none(r" INVITE ", within=0.5)
    # The inviter has its 341, not a notification too.
    ca.expect_none(r" INVITE ", within=0.2)
    # A refused invitation tells nobody.
    cb.send(f"INVITE {a} {chan}")
    cb.expect(cb.num("443") + rf"{esc(a)} {esc(chan)} ")
    ca.expect_none(r" INVITE ", within=0.5)


def test_setname_updates_whois_and_tells_members(clients, uniq):
    a, b, plain, chan = uniq("sn"), uniq("so"), uniq("sp"), "#" + uniq("setn")
    ca = clients.user(a, caps=("setname",))
    cb = clients.user(b, gw=1, caps=("setname",))
    cp = clients.user(plain, gw=1)
    for c in (ca, cb, cp):
        c.join(chan)
    ca.send("SETNAME :Alice in Wonderland")
    ca.expect(by(a) + "SETNAME :Alice in Wonderland$")
    cb.expect(by(a) + "SETNAME :Alice in Wonderland$")
    cp.expect_none(r" SETNAME ", within=0.5)
    cp.send(f"WHOIS {a}")
    cp.expect(cp.num("311") + rf"{esc(a)} \S+ \S+ \* :Alice in Wonderland$")
    cp.send(f"WHO {chan}")
    cp.expect(cp.num("352") + rf"{esc(chan)} \S+ \S+ \S+ {esc(a)} \S+ :\d+ Alice in Wonderland$")
    cp.expect(cp.num("315"))
    # Errors: standard replies; nothing changes.
    ca.send("SETNAME :" + "x" * 201)
    ca.expect(r"^(?:@\S+ )?:\S+ FAIL SETNAME INVALID_REALNAME :")
    ca.send("SETNAME : ")
    ca.expect(r"^(?:@\S+ )?:\S+ FAIL SETNAME INVALID_REALNAME :")
    ca.send("SETNAME")
    ca.expect(ca.num("461") + "SETNAME ")
    cb.expect_none(r" SETNAME ", within=0.5)
    # A client without the cap may still change it (and is not echoed).
    cp.send("SETNAME :Plain Person")
    cb.expect(by(plain) + "SETNAME :Plain Person$")
    cp.expect_none(r" SETNAME ", within=0.3)


def test_bot_mode(clients, uniq):
    bot, b, plain, chan = uniq("bt"), uniq("bo"), uniq("bp"), "#" + uniq("bots")
    cbot = clients.user(bot, caps=("message-tags", "echo-message"))
    assert "BOT=B" in " ".join(ln.raw for ln in cbot.burst if " 005 " in ln.raw)
    cb = clients.user(b, gw=1, caps=("message-tags",))
    cp = clients.user(plain, gw=1)
    cbot.send(f"MODE {bot} +B")
    cbot.expect(by(bot) + rf"MODE {esc(bot)} :?\+B$")
    cbot.send(f"MODE {bot}")
    cbot.expect(cbot.num("221") + r"\+B$")
    # Joining after +B: the room learns it too (WHO flag B).
    for c in (cbot, cb, cp):
        c.join(chan)
    cbot.send(f"PRIVMSG {chan} :beep")
    line = cb.expect(by(bot) + rf"PRIVMSG {esc(chan)} :beep$")
    assert "bot" in line.tags, line.raw
    echo = cbot.expect(by(bot) + rf"PRIVMSG {esc(chan)} :beep$")
    assert "bot" in echo.tags, echo.raw
    line = cp.expect(by(bot) + rf"PRIVMSG {esc(chan)} :beep$")
    assert line.raw.startswith(":"), "no tags without message-tags"
    cbot.send(f"PRIVMSG {b} :boop")
    line = cb.expect(by(bot) + rf"PRIVMSG {esc(b)} :boop$")
    assert "bot" in line.tags, line.raw
    # A client cannot forge the tag.
    cb.send(f"@bot PRIVMSG {chan} :not a bot")
    line = cbot.expect(by(b) + rf"PRIVMSG {esc(chan)} :not a bot$")
    assert "bot" not in line.tags, line.raw
    cp.send(f"WHOIS {bot}")
    cp.expect(cp.num("335") + rf"{esc(bot)} :is a bot$")
    cp.expect(cp.num("318"))
    cp.send(f"WHO {chan}")
    cp.expect(cp.num("352") + rf"{esc(chan)} \S+ \S+ \S+ {esc(bot)} HB\S* ")
    cp.expect(cp.num("315"))
    cp.send(f"WHO {bot}")
    cp.expect(cp.num("352") + rf"\* \S+ \S+ \S+ {esc(bot)} HB ")
    # -B while in the room: messages are plain (and once one is seen, the
    # router has had the change, which went before it), WHO and WHOIS
    # forget it.
    cbot.send(f"MODE {bot} -B")
    cbot.expect(by(bot) + rf"MODE {esc(bot)} :?-B$")
    cbot.send(f"PRIVMSG {chan} :human now")
    line = cb.expect(by(bot) + rf"PRIVMSG {esc(chan)} :human now$")
    assert "bot" not in line.tags, line.raw
    cp.send(f"WHO {chan}")
    cp.expect(cp.num("352") + rf"{esc(chan)} \S+ \S+ \S+ {esc(bot)} H[@+]* ")
    cp.expect(cp.num("315"))
    cp.send(f"WHOIS {bot}")
    cp.expect(cp.num("318"))
    cp.expect_none(r" 335 ", within=0.3)
    # Another user's modes: 502.
    cbot.send(f"MODE {b} +B")
    cbot.expect(cbot.num("502"))


def test_utf8only_is_advertised_and_enforced(clients, uniq):
    nick, chan = uniq("u8"), "#" + uniq("utf")
    c = clients.user(nick)
    assert "UTF8ONLY" in " ".join(ln.raw for ln in c.burst if " 005 " in ln.raw)
    c.join(chan)
    c.send_raw(f"PRIVMSG {chan} :caf\xe9\r\n".encode("latin-1"))
    c.expect(r"^(?:@\S+ )?:\S+ FAIL PRIVMSG INVALID_UTF8 :")
    c.send_raw(b"SETNAME :\xff\xfe\r\n")
    c.expect(r"^(?:@\S+ )?:\S+ FAIL SETNAME INVALID_UTF8 :")
    # The connection is still fine.
    c.send(f"PRIVMSG {chan} :ok")
    c.ping()


def test_monitor(clients, uniq):
    a, b, c_, gone = uniq("ma"), uniq("mb"), uniq("mc"), uniq("mg")
    ca = clients.user(a)
    assert "MONITOR=100" in " ".join(ln.raw for ln in ca.burst if " 005 " in ln.raw)
    cc = clients.user(c_, gw=1)
    ca.send(f"MONITOR + {b},{c_},{gone}")
    ca.expect(ca.num("730") + rf":{esc(c_)}$")
    off = ca.expect(ca.num("731") + ":")
    assert sorted(off.text.split(",")) == sorted([b, gone]), off.raw
    # Someone monitored comes online (on the other gateway), changes nick,
    # goes offline.
    cb = clients.user(b, gw=1)
    ca.expect(ca.num("730") + rf":{esc(b)}$")
    cb.send(f"NICK {gone}")
    cb.expect(by(b) + rf"NICK :?{esc(gone)}$")
    ca.expect(ca.num("730") + rf":{esc(gone)}$")
    ca.expect(ca.num("731") + rf":{esc(b)}$")
    cb.send("QUIT :bye")
    ca.expect(ca.num("731") + rf":{esc(gone)}$")
    # L, S, -, C.
    ca.send("MONITOR L")
    listed = ca.expect(ca.num("732") + ":")
    assert sorted(listed.text.split(",")) == sorted([b, c_, gone]), listed.raw
    ca.expect(ca.num("733") + ":End of MONITOR list$")
    ca.send("MONITOR S")
    ca.expect(ca.num("730") + rf":{esc(c_)}$")
    ca.expect(ca.num("731") + ":")
    ca.send(f"MONITOR - {b},{gone}")
    ca.send("MONITOR L")
    ca.expect(ca.num("732") + rf":{esc(c_)}$")
    ca.expect(ca.num("733"))
    ca.send("MONITOR C")
    ca.send("MONITOR L")
    ca.expect(ca.num("733"))
    ca.expect_none(ca.num("732"), within=0.3)
    # Nothing more about a nick no longer monitored.
    cc.send("QUIT")
    ca.expect_none(r" 73[01] ", within=0.8)
    # Errors: a full list, missing parameters, an unknown subcommand.
    many = ",".join(f"m{i}" for i in range(101))
    ca.send(f"MONITOR + {many}")
    full = ca.expect(ca.num("734") + r"100 (\S+) :Monitor list is full\.$")
    assert full.params[2] == "m100", full.raw
    ca.send("MONITOR +")
    ca.expect(ca.num("461") + "MONITOR ")
    ca.send("MONITOR")
    ca.expect(ca.num("461") + "MONITOR ")
    ca.send("MONITOR X")
    ca.expect(r"^(?:@\S+ )?:\S+ FAIL MONITOR INVALID_PARAMS X :")
    ca.ping()
