"""Accounts (issue 3): registration (IRC REGISTER, NickServ, chatctl), SASL
PLAIN and SCRAM-SHA-256 on either gateway, the SASL error numerics, lockout
after repeated failures, secrets kept out of the database and the logs,
two auth replicas surviving a kill -9 during a login storm, and what a
login shows other users (WHOIS 330, account-tag, extended-join,
account-notify), NickServ, and the `chatctl` admin commands.

Accounts are created with `chatctl account create` unless the test is about
another way of creating them; every test uses its own account names.
"""

from __future__ import annotations

import secrets
import threading
import time

import pytest
import scramp

from harness.accounts import (
    LOGIN_TIMEOUT,
    NICKSERV_NOTICE,
    b64,
    nickserv,
    register_command,
    sasl_connect,
    sasl_plain,
    sasl_scram,
    start_mechanism,
    try_plain_login,
)
from harness.libclient import LibClient
from harness.raw import by, esc

ACCOUNT_CAPS = {"sasl", "draft/account-registration", "account-tag", "extended-join", "account-notify"}
TRACE = {"CHAT__LOG__LEVEL": "trace"}


def password() -> str:
    return "pw-" + secrets.token_urlsafe(12)


def create_account(plat, name: str, pw: str) -> None:
    """`chatctl account create NAME` with the password on stdin."""
    proc = plat.chatctl("account", "create", name, stdin=pw + "\n")
    assert proc.returncode == 0, (
        f"chatctl account create {name}: exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )


def login(clients, plat, gw: int, nick: str, account: str, pw: str, mechanism="PLAIN", caps=()):
    """A registered client logged in with SASL; asserts 903."""
    c = clients.connect(gw, plat)
    result, _ = sasl_connect(c, nick, account, pw, mechanism=mechanism, extra_caps=tuple(caps))
    assert result == "903", f"SASL {mechanism} as {account} on gateway {gw}: {result}"
    return c


def fresh(clients, plat, gw: int = 0):
    """An unregistered connection that already saw CAP LS 302."""
    c = clients.connect(gw, plat)
    c.cap_ls()
    return c


def logged_in_900(c, account: str):
    """The 900 line for `account` (consumed)."""
    line = c.expect(r"^(?:@\S+ )?:\S+ 900 ", LOGIN_TIMEOUT)
    assert len(line.params) >= 4 and line.params[2] == account, (
        f"900 must be `900 <nick> <nick>!<user>@<host> {account} :…`: {line.raw}"
    )
    assert "!" in line.params[1] and "@" in line.params[1], line.raw
    return line


# --------------------------------------------------------------- capabilities


def test_cap_ls_advertises_sasl_and_account_capabilities(clients):
    c = clients.connect()
    c.send("CAP LS 302")
    values = {}
    while True:
        line = c.expect(r"^(?:@\S+ )?:\S+ CAP \S+ LS ")
        for word in (line.text or "").split():
            name, _, value = word.partition("=")
            values[name] = value
        if not (len(line.params) >= 4 and line.params[2] == "*"):
            break
    assert ACCOUNT_CAPS <= set(values), f"CAP LS lacks {ACCOUNT_CAPS - set(values)}; got {sorted(values)}"
    mechs = set(values["sasl"].split(","))
    assert {"PLAIN", "SCRAM-SHA-256"} <= mechs, f"sasl={values['sasl']}"
    assert "before-connect" in values["draft/account-registration"].split(","), values


# --------------------------------------------------------------- registration


def test_register_command_creates_an_account_and_logs_in(platform, clients, uniq):
    nick = uniq("reg")
    pw = password()
    c = fresh(clients, platform)
    c.send("CAP REQ :draft/account-registration")
    c.expect(r" CAP \S+ ACK ")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick[:10]} 0 * :Registering")
    line = register_command(c, "*", pw)  # `*`: the account is the current nick
    assert line.command == "REGISTER" and line.params[:2] == ["SUCCESS", nick], (
        f"expected `REGISTER SUCCESS {nick} :…`, got {line.raw}"
    )
    logged_in_900(c, nick)
    c.send("CAP END")
    c.expect(rf" 001 {nick} ")

    # the new account logs in with SASL on the other gateway
    other = login(clients, platform, 1, uniq("rel"), nick, pw)
    assert not other.closed


def test_register_existing_account_fails(platform, clients, uniq):
    name = uniq("dup")
    pw = password()
    create_account(platform, name, pw)
    c = clients.user(uniq("dupc"), caps=("draft/account-registration",))
    line = register_command(c, name, password())
    assert line.command == "FAIL" and line.params[:3] == ["REGISTER", "ACCOUNT_EXISTS", name], (
        f"expected `FAIL REGISTER ACCOUNT_EXISTS {name} :…`, got {line.raw}"
    )
    # and the existing account's password did not change
    login(clients, platform, 0, uniq("dupl"), name, pw)


def test_register_rejects_bad_names_and_weak_passwords(platform, clients, uniq):
    c = clients.user(uniq("badr"), caps=("draft/account-registration",))
    line = register_command(c, "9starts-with-a-digit", password())
    assert line.params[:2] == ["REGISTER", "BAD_ACCOUNT_NAME"], line.raw
    line = register_command(c, uniq("weak"), "short")
    assert line.params[:2] == ["REGISTER", "WEAK_PASSWORD"], line.raw


def test_chatctl_account_create(platform, clients, uniq):
    name = uniq("ctl")
    pw = password()
    create_account(platform, name, pw)
    login(clients, platform, 0, uniq("ctln"), name, pw)
    listed = platform.chatctl("account", "list")
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout, f"{name} not in `chatctl account list`:\n{listed.stdout}"


# -------------------------------------------------------------------- SASL


@pytest.mark.parametrize("gw", [0, 1])
def test_sasl_plain_on_either_gateway(platform, clients, uniq, gw):
    name, pw = uniq("pl"), password()
    create_account(platform, name, pw)
    c = clients.connect(gw)
    nick = uniq("pln")
    result, numerics = sasl_connect(c, nick, name, pw, finish=False)
    assert result == "903", f"SASL PLAIN on gateway {gw}: {result}"
    nine_hundred = [ln for ln in numerics if ln.command == "900"]
    assert nine_hundred and nine_hundred[0].params[2] == name, [ln.raw for ln in numerics]
    c.send("CAP END")
    c.expect(rf" 001 {nick} ")


@pytest.mark.parametrize("gw", [0, 1])
def test_sasl_scram_sha256_on_either_gateway(platform, clients, uniq, gw):
    """scramp checks the server's v= (it raises otherwise)."""
    name, pw = uniq("sc"), password()
    create_account(platform, name, pw)
    c = clients.connect(gw)
    nick = uniq("scn")
    result, numerics = sasl_connect(c, nick, name, pw, mechanism="SCRAM-SHA-256")
    assert result == "903", f"SCRAM-SHA-256 on gateway {gw}: {result}"
    assert any(ln.command == "900" and ln.params[2] == name for ln in numerics), [ln.raw for ln in numerics]


@pytest.mark.parametrize(
    "account_len,password_len",
    [
        (32, 256),  # 322 bytes: base64 of 432 = a 400-byte chunk and a 32-byte one
        (22, 254),  # 300 bytes: base64 of exactly 400, so `AUTHENTICATE +` ends it
    ],
)
def test_sasl_plain_in_several_chunks(platform, clients, account_len, password_len):
    """The longest account name and password, authzid included: the PLAIN
    message spans AUTHENTICATE chunks (SASL 3.1: 400 bytes a chunk)."""
    name = "ch" + secrets.token_hex(16)[: account_len - 2]
    pw = secrets.token_hex(password_len)[:password_len]
    assert len(name) == account_len and len(pw.encode()) == password_len
    create_account(platform, name, pw)
    c = fresh(clients, platform, 1)
    c.send("CAP REQ :sasl")
    c.expect(r" CAP \S+ ACK ")
    assert sasl_plain(c, name, pw, authzid=name) == "903"


def test_sasl_scram_wrong_password_fails(platform, clients, uniq):
    name, pw = uniq("scw"), password()
    create_account(platform, name, pw)
    c = fresh(clients, platform)
    try:
        result = try_scram(c, name, "not-" + pw)
    except scramp.ScramException as e:
        pytest.fail(f"the server sent a server-final (v=) for a wrong password: {e}")
    assert result == "904", result


def try_scram(c, name, pw):
    c.send("CAP REQ :sasl")
    c.expect(r" CAP \S+ ACK ")
    return sasl_scram(c, name, pw)


def test_sasl_plain_through_the_irc_library(platform, uniq):
    """jaraco/irc's own SASL PLAIN state machine (CAP LS, REQ sasl,
    AUTHENTICATE PLAIN, the blob, CAP END)."""
    name, pw = uniq("lib"), password()
    create_account(platform, name, pw)
    gw = platform.gateways[1]
    lib = LibClient("127.0.0.1", gw.irc_port, uniq("libn"), sasl_login=name, password=pw)
    try:
        ev = lib.wait_for("loggedin", timeout=LOGIN_TIMEOUT)
        assert name in ev.arguments, ev.arguments
        lib.wait_for("saslsuccess", timeout=LOGIN_TIMEOUT)
        lib.wait_for("welcome", timeout=LOGIN_TIMEOUT)
    finally:
        lib.close()


def test_wrong_password_is_904(platform, clients, uniq):
    name, pw = uniq("wr"), password()
    create_account(platform, name, pw)
    c = fresh(clients, platform, 1)
    assert try_plain_login(c, name, "wrong-" + pw) == "904"
    c.expect_none(r" 900 ", within=0.3)
    # an unknown account looks the same
    assert sasl_plain(c, uniq("nobody"), pw) == "904"
    # and the client may try again on the same connection
    assert sasl_plain(c, name, pw) == "903"


def test_unknown_mechanism_is_908_then_904(platform, clients):
    c = fresh(clients, platform)
    c.send("CAP REQ :sasl")
    c.expect(r" CAP \S+ ACK ")
    c.send("AUTHENTICATE NOSUCH-MECH")
    mechs = c.expect(r" 908 ")
    assert {"PLAIN", "SCRAM-SHA-256"} <= set(mechs.params[1].split(",")), mechs.raw
    fail = c.expect(r" 90[2-7] ")
    assert fail.command == "904" and fail.n > mechs.n, f"908 must be followed by 904: {fail.raw}"


def test_authenticate_star_aborts_with_906(platform, clients, uniq):
    c = fresh(clients, platform)
    c.send("CAP REQ :sasl")
    c.expect(r" CAP \S+ ACK ")
    start_mechanism(c, "PLAIN")
    c.send("AUTHENTICATE *")
    assert c.expect(r" 90[2-8] ").command == "906"


def test_already_logged_in_is_907(platform, clients, uniq):
    name, pw = uniq("al"), password()
    create_account(platform, name, pw)
    c = login(clients, platform, 0, uniq("aln"), name, pw)
    c.send("AUTHENTICATE PLAIN")
    line = c.expect(r" (?:90[2-8]) |AUTHENTICATE \+$")
    assert line.command == "907", f"AUTHENTICATE when logged in must be 907, got {line.raw}"


# ------------------------------------------------------ secrets stay secret


def all_database_text(plat) -> str:
    """Every row of every table of the platform's database, as text."""
    tables = plat.sql(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    assert tables, "the auth service's database has no tables"
    out = []
    for schema, table in tables:
        for (row,) in plat.sql(f'SELECT t::text FROM "{schema}"."{table}" AS t'):
            out.append(f"{schema}.{table}: {row}")
    return "\n".join(out)


@pytest.mark.timeout(180)
def test_no_password_in_the_database_or_the_logs(make_platform, clients, uniq):
    plat = make_platform(gateways=2, env=TRACE)
    pw_register, pw_ctl, pw_wrong, pw_nickserv, pw_reset = (password() for _ in range(5))
    reg, ctl, ns = uniq("sreg"), uniq("sctl"), uniq("sns")

    # REGISTER, SASL PLAIN, SCRAM, a wrong password, NickServ REGISTER and
    # IDENTIFY, chatctl create and reset-password: every way a password travels
    c = clients.connect(0, plat)
    c.register(reg, caps=("draft/account-registration",))
    assert register_command(c, "*", pw_register).params[0] == "SUCCESS"
    create_account(plat, ctl, pw_ctl)
    login(clients, plat, 1, uniq("s1"), reg, pw_register)
    login(clients, plat, 0, uniq("s2"), ctl, pw_ctl, mechanism="SCRAM-SHA-256")
    assert try_plain_login(fresh(clients, plat, 1), ctl, pw_wrong) == "904"
    n = clients.user(ns, gw=1, plat=plat)
    nickserv(n, f"REGISTER {pw_nickserv}")
    logged_in_900(n, ns)
    m = clients.user(uniq("s3"), gw=0, plat=plat)
    nickserv(m, f"IDENTIFY {ns} {pw_nickserv}")
    logged_in_900(m, ns)
    reset = plat.chatctl("account", "reset-password", ctl, stdin=pw_reset + "\n")
    assert reset.returncode == 0, reset.stderr
    login(clients, plat, 1, uniq("s4"), ctl, pw_reset)
    time.sleep(0.5)  # let the logs flush

    secrets_ = {
        "REGISTER password": pw_register,
        "chatctl create password": pw_ctl,
        "wrong password": pw_wrong,
        "NickServ password": pw_nickserv,
        "reset password": pw_reset,
    }
    # the PLAIN blob as the client sent it is the password in all but name
    blobs = {
        f"base64 PLAIN blob of {acct}": b64(f"\0{acct}\0{pw}")
        for acct, pw in ((reg, pw_register), (ctl, pw_wrong), (ctl, pw_reset))
    }
    db = all_database_text(plat)
    in_db = [what for what, pw in secrets_.items() if pw in db]
    assert not in_db, f"found in the database in clear: {in_db}"

    found = []
    for log in plat.logs():
        text = log.read_text(errors="replace")
        for what, needle in {**secrets_, **blobs}.items():
            if needle in text:
                line = next(ln for ln in text.splitlines() if needle in ln)
                found.append(f"{what} in {log.name}: {line[:300]}")
    assert not found, "secrets in the logs (at trace level):\n" + "\n".join(found)


# ------------------------------------------------------------------ lockout


@pytest.mark.timeout(180)
def test_twenty_wrong_passwords_lock_the_account_for_the_cool_down(make_platform, clients, uniq):
    plat = make_platform(gateways=1)  # lockout 3 s (harness default)
    name, pw = uniq("lock"), password()
    create_account(plat, name, pw)
    results = []
    for i in range(20):
        c = fresh(clients, plat)
        results.append(try_plain_login(c, name, f"wrong-{i}-{pw}"))
        c.close()
    assert results == ["904"] * 20, f"20 wrong passwords: {results}"
    locked_at = time.monotonic()
    during = try_plain_login(fresh(clients, plat), name, pw)
    assert time.monotonic() - locked_at < 3, "the check during the lockout came too late to mean anything"
    assert during == "904", f"the right password during the lockout must fail, got {during}"

    time.sleep(3.5)
    after = try_plain_login(fresh(clients, plat), name, pw)
    assert after == "903", f"the right password after the 3 s cool-down must work, got {after}"


# ------------------------------------------------- replicas and a login storm


@pytest.mark.timeout(240)
def test_login_storm_survives_killing_one_auth_replica(make_platform, uniq):
    plat = make_platform(
        gateways=2,
        auth_replicas=2,
        env={
            # many failures from one address and account are the point here, not a lockout
            "CHAT__AUTH__MAX_FAILURES": "100000",
            "CHAT__AUTH__MAX_FAILURES_PER_ADDR": "100000",
            # A debug build verifies about 2.5 default-cost argon2id hashes a
            # second on 2 cores, so 100 logins would outlast the gateway's 10 s
            # request timeout whatever the replicas do. A cheaper hash lets the
            # storm finish in ~5 s: what is tested is that a replica's death
            # loses no request, not argon2 throughput.
            "CHAT__AUTH__ARGON2_MEMORY_KIB": "4096",
            "CHAT__AUTH__ARGON2_ITERATIONS": "1",
        },
    )
    accounts = [(uniq("st"), password()) for _ in range(5)]
    for name, pw in accounts:
        create_account(plat, name, pw)

    total = 100
    results: dict[int, tuple[str, float, bool]] = {}
    start = threading.Barrier(total + 1)
    conns = []

    def attempt(i: int) -> None:
        name, pw = accounts[i % len(accounts)]
        right = i % 3 != 0
        try:
            c = plat.connect(i % 2)
            conns.append(c)
            c.cap_ls(timeout=20)
        except (AssertionError, OSError) as e:
            results[i] = (f"no connection: {e}"[:200], 0.0, right)
            return
        finally:
            start.wait(timeout=60)
        t0 = time.monotonic()
        result = try_plain_login(c, name, pw if right else "wrong-" + pw, timeout=20)
        results[i] = (result, time.monotonic() - t0, right)

    threads = [threading.Thread(target=attempt, args=(i,), daemon=True) for i in range(total)]
    for t in threads:
        t.start()
    start.wait(timeout=60)
    time.sleep(1.0)  # the storm is under way: both replicas have requests in hand
    _, metrics = plat.auths[0].get("/metrics")
    answered_by_victim = sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
        if line.startswith("auth_requests_total{") and 'op="plain"' in line
    )
    plat.kill9(plat.auths[0])
    for t in threads:
        t.join(timeout=60)
    for c in conns:
        c.close()

    assert answered_by_victim > 0, "the killed replica had answered no login yet: the test proves nothing"
    assert len(results) == total, f"only {len(results)}/{total} attempts finished"
    slow = {i: r for i, r in results.items() if r[0] not in ("903", "904") or r[1] > 15}
    assert not slow, f"attempts without 903/904 within 15 s: {sorted(slow.items())[:10]}"
    wrong_accepted = [i for i, (res, _, right) in results.items() if not right and res == "903"]
    assert not wrong_accepted, f"wrong passwords accepted: {wrong_accepted}"
    right_refused = sorted(i for i, (res, _, right) in results.items() if right and res != "903")
    assert not right_refused, (
        f"{len(right_refused)} right passwords refused (a killed replica's requests must be redelivered): "
        f"{[(i, results[i]) for i in right_refused[:10]]}"
    )


# --------------------------------------------- what other users see of a login


def test_whois_shows_the_account(platform, clients, uniq):
    name, pw = uniq("wh"), password()
    create_account(platform, name, pw)
    a = login(clients, platform, 0, uniq("whn"), name, pw)
    b = clients.user(uniq("whb"), gw=1)
    b.send(f"WHOIS {a.nick}")
    line = b.expect(b.num("330") + rf"{esc(a.nick)} {esc(name)} ")
    assert line.text == "is logged in as", line.raw
    end = b.expect(b.num("318"))
    assert line.n < end.n
    # and nobody's WHOIS shows a 330 for a user who is not logged in
    b.send(f"WHOIS {b.nick}")
    b.expect(b.num("318"))
    b.expect_none(r" 330 ", within=0.3)


def test_account_tag_on_messages_from_a_logged_in_user(platform, clients, uniq):
    name, pw = uniq("tag"), password()
    create_account(platform, name, pw)
    chan = "#" + uniq("tagc")
    a = login(clients, platform, 0, uniq("tagn"), name, pw)
    b = clients.user(uniq("tagb"), gw=1, caps=("account-tag",))
    plain = clients.user(uniq("tagp"), gw=1)
    for c in (a, b, plain):
        c.join(chan)
    a.send(f"PRIVMSG {chan} :tagged")
    line = b.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :tagged$")
    assert line.tags.get("account") == name, f"account-tag: {line.raw}"
    untagged = plain.expect(by(a.nick) + rf"PRIVMSG {esc(chan)} :tagged$")
    assert "account" not in untagged.tags, f"no account tag without the cap: {untagged.raw}"
    a.send(f"PRIVMSG {b.nick} :direct")
    line = b.expect(by(a.nick) + rf"PRIVMSG {esc(b.nick)} :direct$")
    assert line.tags.get("account") == name, line.raw
    # a user who is not logged in sends no account tag
    plain.send(f"PRIVMSG {chan} :anonymous")
    line = b.expect(by(plain.nick) + rf"PRIVMSG {esc(chan)} :anonymous$")
    assert "account" not in line.tags, line.raw


def test_extended_join(platform, clients, uniq):
    name, pw = uniq("ej"), password()
    create_account(platform, name, pw)
    chan = "#" + uniq("ejc")
    watcher = clients.user(uniq("ejw"), gw=1, caps=("extended-join",))
    watcher.join(chan)
    a = clients.connect(0)
    result, _ = sasl_connect(a, uniq("ejn"), name, pw)
    assert result == "903"
    a.join(chan)
    line = watcher.expect(by(a.nick) + rf"JOIN {esc(chan)} ")
    assert line.params[1:] == [name, f"SASL {a.nick}"], f"extended-join: {line.raw}"
    anon = clients.user(uniq("eja"), gw=0, realname="Anon Ymous")
    anon.join(chan)
    line = watcher.expect(by(anon.nick) + rf"JOIN {esc(chan)} ")
    assert line.params[1:] == ["*", "Anon Ymous"], f"extended-join of a user not logged in: {line.raw}"


def test_account_notify_when_a_channel_member_identifies(platform, clients, uniq):
    name, pw = uniq("an"), password()
    create_account(platform, name, pw)
    chan = "#" + uniq("anc")
    a = clients.user(uniq("ann"), gw=0, caps=("account-notify",))
    watcher = clients.user(uniq("anw"), gw=1, caps=("account-notify",))
    blind = clients.user(uniq("anb"), gw=1)
    for c in (a, watcher, blind):
        c.join(chan)
    nickserv(a, f"IDENTIFY {name} {pw}")
    logged_in_900(a, name)
    line = watcher.expect(by(a.nick) + r"ACCOUNT ", timeout=LOGIN_TIMEOUT)
    assert line.params == [name], f"account-notify: {line.raw}"
    watcher.expect_none(by(a.nick) + r"ACCOUNT ", within=0.5)  # once, not once per room/gateway
    blind.expect_none(r" ACCOUNT ", within=0.3)
    a.expect_none(by(a.nick) + r"ACCOUNT ", within=0.3)


# ------------------------------------------------------------------ NickServ


def test_nickserv_register_and_identify(platform, clients, uniq):
    nick, pw = uniq("nsr"), password()
    a = clients.user(nick, gw=0)
    nickserv(a, f"REGISTER {pw}")
    logged_in_900(a, nick)
    a.expect(NICKSERV_NOTICE + rf"{esc(nick)} :")
    # IDENTIFY with the account named, from a session with another nick
    b = clients.user(uniq("nsi"), gw=1)
    nickserv(b, f"IDENTIFY {nick} {pw}")
    logged_in_900(b, nick)
    # a wrong password: a NOTICE, no login
    c = clients.user(nick + "x", gw=1)
    nickserv(c, f"IDENTIFY {nick} wrong-{pw}")
    c.expect(NICKSERV_NOTICE, timeout=LOGIN_TIMEOUT)
    c.expect_none(r" 900 ", within=0.5)
    # and a registered account via NickServ logs in with SASL too
    login(clients, platform, 1, uniq("nss"), nick, pw, mechanism="SCRAM-SHA-256")


def test_nickserv_identify_with_password_only(platform, clients, uniq):
    nick, pw = uniq("nsp"), password()
    create_account(platform, nick, pw)
    a = clients.user(nick, gw=1)
    nickserv(a, f"IDENTIFY {pw}")
    logged_in_900(a, nick)


def test_nickserv_info(platform, clients, uniq):
    name, pw = uniq("nsinfo"), password()
    create_account(platform, name, pw)
    a = clients.user(uniq("nsa"))
    nickserv(a, f"INFO {name}")
    line = a.expect(NICKSERV_NOTICE + rf"{esc(a.nick)} :.*{esc(name)}", timeout=LOGIN_TIMEOUT)
    text = " ".join(ln.text for ln in [line, *a.collect(NICKSERV_NOTICE, 20, 1.0)])
    assert "regist" in text.lower(), f"INFO must say when {name} was registered: {text}"
    assert str(time.gmtime().tm_year) in text, f"INFO must show the registration date: {text}"
    nickserv(a, f"INFO {uniq('nosuch')}")
    a.expect(NICKSERV_NOTICE, timeout=LOGIN_TIMEOUT)


def test_nickserv_ghost(platform, clients, uniq):
    name, pw = uniq("gh"), password()
    create_account(platform, name, pw)
    chan = "#" + uniq("ghc")
    ghost = login(clients, platform, 1, name, name, pw)  # the old session, on the other gateway
    watcher = clients.user(uniq("ghw"), gw=0)
    for c in (ghost, watcher):
        c.join(chan)
    # someone not logged in as that account cannot ghost it
    stranger = clients.user(uniq("ghs"), gw=0)
    nickserv(stranger, f"GHOST {name}")
    stranger.expect(NICKSERV_NOTICE, timeout=LOGIN_TIMEOUT)
    time.sleep(0.5)
    ghost.ping()

    me = login(clients, platform, 0, uniq("ghn"), name, pw)
    nickserv(me, f"GHOST {name}")
    err = ghost.expect(r"^ERROR :", timeout=LOGIN_TIMEOUT)
    assert "Killed" in err.text and f"Ghosted by {me.nick}" in err.text, err.raw
    ghost.expect_closed()
    quit_ = watcher.expect(by(name) + r"QUIT ", timeout=LOGIN_TIMEOUT)
    assert f"Killed (Ghosted by {me.nick})" in quit_.text, quit_.raw
    # the nick is free now (its claim is released as the killed session quits)
    deadline = time.monotonic() + 5
    while True:
        me.send(f"NICK {name}")
        line = me.expect(rf"^(?:@\S+ )?:{esc(me.nick)}!\S+ NICK :?{esc(name)}$| 433 ", timeout=LOGIN_TIMEOUT)
        if line.command == "NICK":
            break
        assert time.monotonic() < deadline, f"nick {name} still taken 5 s after its ghost was killed"
        time.sleep(0.3)


def test_nickserv_nick_cannot_be_taken(platform, clients):
    c = clients.connect()
    c.send("NICK NickServ")
    c.send("USER ns 0 * :NS")
    assert c.expect(r" (?:001|432|433) ").command == "432"


# ------------------------------------------------------------------- chatctl


def test_chatctl_list_disable_delete_reset(platform, clients, uniq):
    a, b, d = uniq("cla"), uniq("clb"), uniq("cld")
    pw_a, pw_b, pw_d = password(), password(), password()
    for name, pw in ((a, pw_a), (b, pw_b), (d, pw_d)):
        create_account(platform, name, pw)
    listed = platform.chatctl("account", "list")
    assert listed.returncode == 0, listed.stderr
    for name in (a, b, d):
        assert name in listed.stdout, f"{name} not listed:\n{listed.stdout}"

    # disabled → 904, on both mechanisms; enabled again → 903
    assert platform.chatctl("account", "disable", a).returncode == 0
    assert try_plain_login(fresh(clients, platform), a, pw_a) == "904"
    assert try_scram(fresh(clients, platform, 1), a, pw_a) == "904"
    assert platform.chatctl("account", "enable", a).returncode == 0
    assert try_plain_login(fresh(clients, platform), a, pw_a) == "903"

    # reset-password → the old password 904, the new one 903 (PLAIN and SCRAM)
    new_b = password()
    reset = platform.chatctl("account", "reset-password", b, stdin=new_b + "\n")
    assert reset.returncode == 0, reset.stderr
    assert try_plain_login(fresh(clients, platform), b, pw_b) == "904"
    assert try_plain_login(fresh(clients, platform, 1), b, new_b) == "903"
    assert try_scram(fresh(clients, platform), b, new_b) == "903"

    # delete → gone from the list, logins fail, the name can be registered again
    assert platform.chatctl("account", "delete", d).returncode == 0
    listed = platform.chatctl("account", "list")
    assert d not in listed.stdout.split(), f"{d} still listed after delete:\n{listed.stdout}"
    assert try_plain_login(fresh(clients, platform), d, pw_d) == "904"
    c = clients.user(uniq("cldn"), caps=("draft/account-registration",))
    assert register_command(c, d, password()).params[0] == "SUCCESS"
