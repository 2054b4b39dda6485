"""ChanServ: channel registration, backed by the router and PostgreSQL.

Every command over raw sockets, with each refusal: REGISTER, DROP,
OP/DEOP/VOICE/DEVOICE, ACCESS ADD/DEL/LIST, SET TOPICLOCK, INFO, HELP, and
the gateway's own answers (unknown command, syntax, bad channel name);
automatic +o/+v on joining and on identifying later; the topic lock (482
from the router); and a registered channel coming back as it was after
everybody left, the router restarted and its NATS record was purged, while
an unregistered channel leaves nothing in PostgreSQL.

Accounts are made with NickServ REGISTER (which logs the session in) or
`chatctl account create`."""

from __future__ import annotations

import secrets
import time

import pytest

from harness.accounts import LOGIN_TIMEOUT, nickserv, wait_until
from harness.infra import escape_name, kv_get, kv_purge
from harness.raw import by, esc

CS = r"^(?:@\S+ )?:ChanServ!ChanServ@services\. "


def password() -> str:
    return "pw-" + secrets.token_hex(8)


def account_user(clients, nick: str, gw: int = 0, plat=None, caps=()):
    """A registered client logged in to a new account named after its nick."""
    c = clients.user(nick, gw=gw, plat=plat, caps=caps)
    nickserv(c, f"REGISTER {password()}")
    c.expect(c.num("900"), timeout=LOGIN_TIMEOUT)
    c.expect(r"NickServ!\S+ NOTICE \S+ :You are now identified", timeout=LOGIN_TIMEOUT)
    return c


def cs(c, text: str) -> None:
    c.send(f"PRIVMSG ChanServ :{text}")


def says(c, text_pattern: str, timeout: float = 5.0):
    """Waits for a ChanServ NOTICE to `c` whose text matches `text_pattern`
    (searched: anchor it with `^`… `$` inside if needed)."""
    return c.expect(CS + rf"NOTICE {esc(c.nick)} :.*?{text_pattern}", timeout)


def ask(c, command: str, answer: str):
    cs(c, command)
    return says(c, answer)


def cs_mode(chan: str, change: str) -> str:
    """The MODE line ChanServ's change shows (`+o nick`)."""
    sign_letter, nick = change.split(" ", 1)
    return CS + rf"MODE {esc(chan)} {esc(sign_letter)} :?{esc(nick)}$"


def registered_channel(clients, uniq, plat=None):
    """A channel created and registered by a logged-in founder."""
    founder = account_user(clients, uniq("csf"), plat=plat)
    chan = "#" + uniq("cs")
    founder.join(chan)
    ask(founder, f"REGISTER {chan}", rf"{esc(chan)} is now registered to {founder.nick}\.$")
    return founder, chan


def test_register_info_and_the_gateways_answers(platform, clients, uniq):
    guest = clients.user(uniq("csg"))
    chan = "#" + uniq("csr")
    guest.join(chan)
    ask(guest, f"REGISTER {chan}", r"You are not logged in to an account")

    alice = account_user(clients, uniq("csa"), gw=1)
    ask(alice, "REGISTER #" + uniq("nobody"), r"#\S+ does not exist")
    ask(alice, f"REGISTER {chan}", rf"You are not on {esc(chan)}\.$")
    alice.join(chan)
    ask(alice, f"REGISTER {chan}", rf"You must be a channel operator of {esc(chan)}")

    # The guest makes alice an op; she registers it.
    guest.send(f"MODE {chan} +o {alice.nick}")
    alice.expect(by(guest.nick) + rf"MODE {esc(chan)} \+o :?{esc(alice.nick)}$")
    ask(alice, f"register {chan}", rf"{esc(chan)} is now registered to {alice.nick}\.$")
    ask(alice, f"REGISTER {chan}", rf"{esc(chan)} is already registered\.$")

    # INFO, for anyone; the target is case-insensitive.
    guest.send(f"PRIVMSG chanserv :INFO {chan}")
    says(guest, rf"Information on {esc(chan)}:$")
    says(guest, rf"Founder    : {alice.nick}$")
    says(guest, r"Registered : \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
    says(guest, r"Modes      : \+nt$")
    says(guest, r"Topic lock : OFF$")
    says(guest, r"Access     : 0 entries$")
    other = "#" + uniq("csu")
    guest.join(other)
    ask(guest, f"INFO {other}", rf"{esc(other)} is not registered\.$")

    # What the gateway answers by itself.
    ask(guest, "FROBNICATE #x", r"Unknown command FROBNICATE\. Send HELP")
    ask(guest, "REGISTER", r"Syntax: REGISTER <#channel>$")
    ask(guest, f"ACCESS {chan} ADD someone ADMIN", r"Syntax: ACCESS <#channel> ADD ")
    ask(guest, "INFO nohash", r"nohash is not a valid channel name\.$")
    cs(guest, "HELP")
    says(guest, r"ChanServ keeps registered channels")
    says(guest, r"  REGISTER <#channel> ")
    says(guest, r"  HELP ")
    says(guest, r"The founder and OP accounts pass")
    guest.drain()
    # A NOTICE to ChanServ is never answered; nothing reaches the channel.
    guest.send(f"NOTICE ChanServ :INFO {chan}")
    guest.expect_none(CS, within=0.5)
    alice.expect_none(r"PRIVMSG|FROBNICATE", within=0.2)

    # ChanServ is a pseudo-user: WHOIS answers, the nick cannot be taken.
    guest.send("WHOIS ChanServ")
    guest.expect(guest.num("311") + r"ChanServ ChanServ services\. \* :Channel Services$")
    guest.expect(guest.num("318") + r"ChanServ ")
    guest.send("NICK chanserv")
    guest.expect(guest.num("432") + r"chanserv ")
    guest.send("HELP")
    guest.expect(r" 705 \S+ \* :.*/msg ChanServ HELP")


def test_op_deop_voice_devoice(platform, clients, uniq):
    founder, chan = registered_channel(clients, uniq)
    bob = account_user(clients, uniq("csb"), gw=1)
    guest = clients.user(uniq("csg"), gw=1)
    for c in (bob, guest):
        c.join(chan)
        founder.expect(by(c.nick) + rf"JOIN :?{esc(chan)}$")

    ask(bob, f"OP {chan}", rf"You do not have enough access on {esc(chan)}\.$")
    ask(guest, f"OP {chan}", r"You are not logged in to an account")
    ask(founder, f"OP {chan} ghost", rf"ghost is not on {esc(chan)}\.$")

    cs(founder, f"OP {chan} {bob.nick.upper()}")
    for c in (founder, bob, guest):
        c.expect(cs_mode(chan, f"+o {bob.nick}"))
    assert f"@{bob.nick}" in guest.names(chan)
    ask(founder, f"OP {chan} {bob.nick}", rf"{bob.nick} is already opped on {esc(chan)}\.$")
    cs(founder, f"DEOP {chan} {bob.nick}")
    bob.expect(cs_mode(chan, f"-o {bob.nick}"))
    ask(founder, f"DEOP {chan} {bob.nick}", rf"{bob.nick} is not opped on {esc(chan)}\.$")
    # Without a nick: the sender.
    cs(founder, f"DEOP {chan}")
    guest.expect(cs_mode(chan, f"-o {founder.nick}"))
    cs(founder, f"op {chan}")
    guest.expect(cs_mode(chan, f"+o {founder.nick}"))

    # VOICE access voices, but does not op.
    ask(founder, f"ACCESS {chan} ADD {bob.nick} VOICE", rf"{bob.nick} is now on the access list")
    cs(bob, f"VOICE {chan}")
    guest.expect(cs_mode(chan, f"+v {bob.nick}"))
    cs(bob, f"DEVOICE {chan}")
    guest.expect(cs_mode(chan, f"-v {bob.nick}"))
    ask(bob, f"OP {chan}", r"You do not have enough access")
    ask(guest, f"VOICE {chan}", r"You are not logged in")

    # Not registered; not a channel anyone is in.
    plain = "#" + uniq("csp")
    guest.join(plain)
    ask(founder, f"OP {plain}", rf"{esc(plain)} is not registered\.$")
    ask(founder, "OP #" + uniq("empty"), r"is not registered\.$")


def test_access_list(platform, clients, uniq):
    founder, chan = registered_channel(clients, uniq)
    bob = account_user(clients, uniq("csb"), gw=1)
    carol = account_user(clients, uniq("csc"))
    for c in (bob, carol):
        c.join(chan)

    ask(bob, f"ACCESS {chan} ADD {carol.nick} OP", rf"You are not the founder of {esc(chan)}\.$")
    ask(founder, f"ACCESS {chan} ADD 9lives OP", r"9lives is not a valid account name\.$")
    ask(founder, f"ACCESS {chan} ADD {founder.nick.upper()} OP",
        rf"{founder.nick} is the founder of {esc(chan)}\.$")
    ask(founder, f"ACCESS {chan} DEL nobody", rf"nobody is not on the access list of {esc(chan)}\.$")
    ask(founder, f"ACCESS {chan} LIST", rf"Access list of {esc(chan)}:$")
    says(founder, rf"  FOUNDER {founder.nick}$")
    says(founder, rf"End of the access list of {esc(chan)}\.$")

    ask(founder, f"access {chan} add {bob.nick} voice",
        rf"{bob.nick} is now on the access list of {esc(chan)} as VOICE\.$")
    ask(bob, f"ACCESS {chan} LIST", r"You do not have enough access")
    # An account nobody uses yet is accepted (the router cannot ask the
    # auth service cheaply whether it exists).
    ask(founder, f"ACCESS {chan} ADD future-user VOICE", r"future-user is now on the access list")
    ask(founder, f"ACCESS {chan} ADD {bob.nick} OP", rf"{bob.nick} is now on the access list of \S+ as OP\.$")
    ask(bob, f"ACCESS {chan} LIST", rf"Access list of {esc(chan)}:$")
    says(bob, rf"  FOUNDER {founder.nick}$")
    entries = [says(bob, r"  (?:OP|VOICE) +\S+$").text.split() for _ in range(2)]
    assert sorted(entries) == sorted([["OP", bob.nick], ["VOICE", "future-user"]]), entries
    says(bob, r"End of the access list")
    ask(carol, f"ACCESS {chan} LIST", r"You do not have enough access")

    ask(founder, f"ACCESS {chan} DEL {bob.nick.upper()}",
        rf"{bob.nick} has been removed from the access list of {esc(chan)}\.$")
    ask(bob, f"ACCESS {chan} LIST", r"You do not have enough access")
    ask(founder, f"INFO {chan}", r"Information on ")
    says(founder, r"Access     : 1 entries$")
    ask(founder, "ACCESS #" + uniq("csx") + " LIST", r"is not registered\.$")


def test_access_gives_modes_on_join_and_on_identify(platform, clients, uniq):
    founder, chan = registered_channel(clients, uniq)
    bob = account_user(clients, uniq("csb"), gw=1)
    carol = account_user(clients, uniq("csc"))
    late = uniq("csl")
    late_pw = password()
    proc = platform.chatctl("account", "create", late, stdin=late_pw + "\n")
    assert proc.returncode == 0, proc.stderr
    ask(founder, f"ACCESS {chan} ADD {bob.nick} OP", r"is now on the access list")
    ask(founder, f"ACCESS {chan} ADD {carol.nick} VOICE", r"is now on the access list")
    ask(founder, f"ACCESS {chan} ADD {late} OP", r"is now on the access list")

    bob.join(chan)
    for c in (founder, bob):
        c.expect(cs_mode(chan, f"+o {bob.nick}"))
    carol.join(chan)
    founder.expect(cs_mode(chan, f"+v {carol.nick}"))
    guest = clients.user(uniq("csg"), gw=1)
    guest.join(chan)
    founder.expect(by(guest.nick) + rf"JOIN :?{esc(chan)}$")
    founder.expect_none(CS + r"MODE ", within=0.5)
    names = guest.names(chan)
    assert {f"@{founder.nick}", f"@{bob.nick}", f"+{carol.nick}", guest.nick} == set(names), names

    # Identifying later gives the access of the account.
    someone = clients.user(uniq("css"))
    someone.join(chan)
    nickserv(someone, f"IDENTIFY {late} {late_pw}")
    someone.expect(someone.num("900"), timeout=LOGIN_TIMEOUT)
    founder.expect(cs_mode(chan, f"+o {someone.nick}"), timeout=LOGIN_TIMEOUT)

    # Everybody leaves: the first to come back is not given op for it…
    for c in (founder, bob, carol, guest, someone):
        c.send(f"PART {chan}")
        c.expect(by(c.nick) + rf"PART {esc(chan)}")
    first = clients.user(uniq("csz"))
    first.join(chan)
    assert first.names(chan) == [first.nick]
    # …but an account with access is, whoever came first.
    founder.join(chan)
    first.expect(cs_mode(chan, f"+o {founder.nick}"))


def test_topic_lock(platform, clients, uniq):
    founder, chan = registered_channel(clients, uniq)
    bob = account_user(clients, uniq("csb"), gw=1)
    bob.join(chan)
    founder.send(f"MODE {chan} +o {bob.nick}")
    bob.expect(by(founder.nick) + rf"MODE {esc(chan)} \+o :?{esc(bob.nick)}$")

    ask(bob, f"SET {chan} TOPICLOCK ON", rf"You are not the founder of {esc(chan)}\.$")
    ask(founder, f"set {chan} topiclock on", rf"Topic lock for {esc(chan)} is now ON\.$")
    # bob is a channel operator, but has no access: the router refuses.
    bob.send(f"TOPIC {chan} :bob's topic")
    bob.expect(bob.num("482") + rf"{esc(chan)} :")
    founder.expect_none(r"TOPIC .*bob's topic", within=0.5)
    founder.send(f"TOPIC {chan} :the founder's topic")
    bob.expect(by(founder.nick) + rf"TOPIC {esc(chan)} :the founder's topic$")
    ask(founder, f"INFO {chan}", r"Information on")
    says(founder, r"Topic lock : ON$")

    ask(founder, f"ACCESS {chan} ADD {bob.nick} OP", r"is now on the access list")
    bob.send(f"TOPIC {chan} :bob may now")
    founder.expect(by(bob.nick) + rf"TOPIC {esc(chan)} :bob may now$")
    ask(founder, f"ACCESS {chan} DEL {bob.nick}", r"has been removed")
    ask(founder, f"SET {chan} TOPICLOCK OFF", rf"Topic lock for {esc(chan)} is now OFF\.$")
    bob.send(f"TOPIC {chan} :unlocked")
    founder.expect(by(bob.nick) + rf"TOPIC {esc(chan)} :unlocked$")
    ask(founder, f"SET {chan} TOPICLOCK MAYBE", r"Syntax: SET <#channel> TOPICLOCK <ON\|OFF>$")


def test_drop(platform, clients, uniq):
    founder, chan = registered_channel(clients, uniq)
    bob = account_user(clients, uniq("csb"), gw=1)
    guest = clients.user(uniq("csg"))
    for c in (bob, guest):
        c.join(chan)
    ask(bob, f"DROP {chan}", rf"You are not the founder of {esc(chan)}\.$")
    ask(guest, f"DROP {chan}", r"You are not logged in")
    room = chan[1:].lower()
    assert wait_until(lambda: platform.sql("SELECT 1 FROM chanserv_rooms WHERE room = %s", (room,)), 10)
    ask(founder, f"DROP {chan}", rf"{esc(chan)} has been dropped\.$")
    ask(guest, f"INFO {chan}", rf"{esc(chan)} is not registered\.$")
    ask(founder, f"DROP {chan}", r"is not registered\.$")
    assert wait_until(lambda: not platform.sql("SELECT 1 FROM chanserv_rooms WHERE room = %s", (room,)), 10)
    # It can be registered again (the founder is still an op).
    ask(founder, f"REGISTER {chan}", r"is now registered to")


def _room(chan: str) -> str:
    return chan[1:].lower()


@pytest.mark.timeout(180)
def test_a_registered_channel_survives_everybody_leaving_a_restart_and_losing_its_record(
    make_platform, clients, uniq,
):
    plat = make_platform(gateways=1)
    founder, chan = registered_channel(clients, uniq, plat=plat)
    bob = account_user(clients, uniq("csb"), plat=plat)
    room = _room(chan)
    ask(founder, f"ACCESS {chan} ADD {bob.nick} OP", r"is now on the access list")
    ask(founder, f"SET {chan} TOPICLOCK ON", r"is now ON")
    founder.send(f"TOPIC {chan} :kept across restarts")
    founder.expect(by(founder.nick) + rf"TOPIC {esc(chan)} :kept across restarts$")
    founder.send(f"MODE {chan} +mk-t sesame")
    founder.expect(by(founder.nick) + rf"MODE {esc(chan)} \+mk-t :?sesame$")
    founder.send(f"MODE {chan} +l 7")
    founder.expect(by(founder.nick) + rf"MODE {esc(chan)} \+l :?7$")
    founder.send(f"MODE {chan} +bb *!*@banned.example $a:evil")
    founder.expect(by(founder.nick) + rf"MODE {esc(chan)} \+bb \*!\*@banned\.example :?\$a:evil$")
    # An unregistered channel with a topic, for comparison.
    plain = "#" + uniq("csplain")
    founder.join(plain)
    founder.send(f"TOPIC {plain} :forgotten")
    founder.expect(by(founder.nick) + rf"TOPIC {esc(plain)} :forgotten$")

    # Written through to PostgreSQL (the router does not wait for it, so poll).
    def stored():
        rows = plat.sql(
            "SELECT founder, topic, moderated, topic_ops, key, user_limit, topic_lock FROM chanserv_rooms "
            "WHERE room = %s", (room,))
        return rows == [(founder.nick, "kept across restarts", True, False, "sesame", 7, True)]
    assert wait_until(stored, 10), plat.sql("SELECT * FROM chanserv_rooms")
    assert wait_until(lambda: len(plat.sql("SELECT 1 FROM chanserv_bans WHERE room = %s", (room,))) == 2, 10)
    assert plat.sql("SELECT account, level FROM chanserv_access WHERE room = %s", (room,)) == [(bob.nick, "op")]
    assert plat.sql("SELECT 1 FROM chanserv_rooms WHERE room = %s", (_room(plain),)) == []

    # Everybody leaves; the router stops; the rooms' NATS records are lost.
    for c in (founder,):
        c.send(f"PART {chan}")
        c.expect(by(c.nick) + rf"PART {esc(chan)}")
        c.send(f"PART {plain}")
        c.expect(by(c.nick) + rf"PART {esc(plain)}")
    plat.stop_router()
    for r in (room, _room(plain)):
        kv_purge(plat.prefix, "rooms", "room." + escape_name(r))
        assert kv_get(plat.prefix, "rooms", "room." + escape_name(r)) is None
    plat.start_router()

    # A guest comes first: the key holds, then the topic is back, no op.
    guest = clients.user(uniq("csg"), plat=plat)
    guest.send(f"JOIN {chan}")
    guest.expect(guest.num("475") + rf"{esc(chan)} ", timeout=15)
    guest.send(f"JOIN {chan} sesame")
    guest.expect(guest.num("332") + rf"{esc(chan)} :kept across restarts$")
    guest.expect(guest.num("366") + rf"{esc(chan)} ")
    assert guest.names(chan) == [guest.nick]
    guest.send(f"MODE {chan}")
    line = guest.expect(guest.num("324") + rf"{esc(chan)} ")
    assert line.params[2:] == ["+mnkl", "sesame", "7"], line.raw
    guest.send(f"MODE {chan} +b")
    masks = {guest.expect(guest.num("367") + rf"{esc(chan)} ").params[2] for _ in range(2)}
    assert masks == {"*!*@banned.example", "$a:evil"}, masks
    guest.expect(guest.num("368") + rf"{esc(chan)} ")
    # -t, but the topic lock holds.
    guest.send(f"TOPIC {chan} :guest topic")
    guest.expect(guest.num("482") + rf"{esc(chan)} :")

    # The founder and bob get op back; the access list and settings are there.
    founder.join(chan)
    guest.expect(cs_mode(chan, f"+o {founder.nick}"))
    bob.join(chan)
    guest.expect(cs_mode(chan, f"+o {bob.nick}"))
    ask(founder, f"INFO {chan}", rf"Information on {esc(chan)}:$")
    says(founder, rf"Founder    : {founder.nick}$")
    says(founder, r"Registered : ")
    says(founder, r"Modes      : \+mnkl \* 7$")
    says(founder, r"Topic lock : ON$")
    ask(bob, f"ACCESS {chan} LIST", r"Access list of ")
    says(bob, rf"  FOUNDER {founder.nick}$")
    says(bob, rf"  OP +{bob.nick}$")
    bob.send(f"TOPIC {chan} :bob's topic")
    guest.expect(by(bob.nick) + rf"TOPIC {esc(chan)} :bob's topic$")

    # The unregistered channel came back as a new one: no topic, joiner op.
    other = clients.user(uniq("cso"), plat=plat)
    other.send(f"JOIN {plain}")
    other.expect(other.num("366") + rf"{esc(plain)} ")
    assert not any(ln.command == "332" for ln in other.history), "the topic of an unregistered channel came back"
    assert other.names(plain) == [f"@{other.nick}"]
    assert plat.sql("SELECT 1 FROM chanserv_rooms WHERE room = %s", (_room(plain),)) == []

    # A changed topic after the restart is written through again.
    assert wait_until(lambda: plat.sql(
        "SELECT topic FROM chanserv_rooms WHERE room = %s", (room,)) == [("bob's topic",)], 10)


@pytest.mark.timeout(120)
def test_chanserv_waits_out_a_postgres_outage_without_blocking_the_room(make_platform, clients, uniq):
    """With PostgreSQL unreachable the router keeps serving the room and the
    ChanServ commands; the writes are retried until it is back."""
    plat = make_platform(gateways=1)
    founder, chan = registered_channel(clients, uniq, plat=plat)
    room = _room(chan)
    assert wait_until(lambda: plat.sql("SELECT 1 FROM chanserv_rooms WHERE room = %s", (room,)), 10)
    # Lock the table so every write waits and times out (the server stays up).
    import psycopg

    blocker = psycopg.connect(plat.iso.postgres_url, autocommit=False)
    try:
        blocker.execute("LOCK TABLE chanserv_rooms IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        founder.send(f"TOPIC {chan} :while locked")
        founder.expect(by(founder.nick) + rf"TOPIC {esc(chan)} :while locked$")
        founder.send(f"PRIVMSG {chan} :still here")
        ask(founder, f"SET {chan} TOPICLOCK ON", r"is now ON")
        assert time.monotonic() - started < 3, "the room waited for PostgreSQL"
        time.sleep(6)  # longer than one write's timeout: at least one failure
    finally:
        blocker.rollback()
        blocker.close()
    assert wait_until(lambda: plat.sql(
        "SELECT topic, topic_lock FROM chanserv_rooms WHERE room = %s", (room,)) == [("while locked", True)], 20)
    status, body = plat.router.get("/metrics")
    assert status == 200
    failures = [ln for ln in body.splitlines() if ln.startswith("router_pg_failures_total")]
    assert failures and any(float(ln.rsplit(" ", 1)[1]) >= 1 for ln in failures), failures
