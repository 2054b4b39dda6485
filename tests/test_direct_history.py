"""Direct-message history over IRC (issue: history): CHATHISTORY of a
private conversation (both sides can read it, in both directions, a third
user cannot; an account's history follows it to its next session),
messages to a registered account that is offline (kept, echoed, one
notice, delivered once at its next login by SASL or NickServ), and 401
for a nick that is no account.

Accounts are created with `chatctl account create`; every test uses its
own nicks and accounts. The CHATHISTORY helpers come from test_chathistory.
"""

from __future__ import annotations

import re
import secrets

from harness.accounts import LOGIN_TIMEOUT, nickserv, sasl_connect, wait_until
from harness.raw import by, esc
from test_chathistory import HISTORY_CAPS, TIME_RX, fail_line, fetch, fetch_until, same_messages

OFFLINE_NOTICE = "is not connected; your message will be delivered when they next log in"


def password() -> str:
    return "pw-" + secrets.token_urlsafe(12)


def create_account(plat, name: str) -> str:
    pw = password()
    proc = plat.chatctl("account", "create", name, stdin=pw + "\n")
    assert proc.returncode == 0, f"chatctl account create {name}: {proc.stdout} {proc.stderr}"
    return pw


def sasl_user(clients, plat, nick: str, account: str, pw: str, caps=(), gw: int = 0):
    """Logs in with SASL PLAIN before registration and completes it; the
    lines after the welcome burst stay in the inbox (pending messages
    arrive there)."""
    c = clients.connect(gw, plat)
    result, _ = sasl_connect(c, nick, account, pw, extra_caps=tuple(caps), finish=False)
    assert result == "903", f"SASL PLAIN as {account}: {result}"
    c.send("CAP END")
    c.expect(rf" 001 {re.escape(nick)} ", LOGIN_TIMEOUT)
    c.expect(rf" (?:376|422) {re.escape(nick)} ", LOGIN_TIMEOUT)
    c.nick = nick
    return c


def pending_rows(plat, account: str) -> int:
    """Messages the history service still keeps for `account` (the
    delivery was not acknowledged yet)."""
    return plat.sql("SELECT count(*) FROM pending_deliveries WHERE account = %s", (account,))[0][0]


# ------------------------------------------------------------ conversations


def test_both_sides_read_a_conversation_and_a_third_user_cannot(clients, uniq):
    alice = clients.user(uniq("da"), caps=(*HISTORY_CAPS, "echo-message"))
    bob = clients.user(uniq("db"), gw=1, caps=(*HISTORY_CAPS, "echo-message"))
    carol = clients.user(uniq("dc"), caps=HISTORY_CAPS)

    alice.send(f"PRIVMSG {bob.nick} :hello bob")
    a_echo = alice.expect(by(alice.nick) + rf"PRIVMSG {esc(bob.nick)} :hello bob$")
    b_seen = bob.expect(by(alice.nick) + rf"PRIVMSG {esc(bob.nick)} :hello bob$")
    assert a_echo.tags["msgid"] == b_seen.tags["msgid"] and a_echo.tags["time"] == b_seen.tags["time"]
    bob.send(f"NOTICE {alice.nick} :hello alice")
    b_echo = bob.expect(by(bob.nick) + rf"NOTICE {esc(alice.nick)} :hello alice$")
    alice.expect(by(bob.nick) + rf"NOTICE {esc(alice.nick)} :hello alice$")

    shape = lambda b: [(ln.nick, ln.command, ln.params[0], ln.text) for ln in b.lines]  # noqa: E731
    a_view = fetch_until(alice, f"CHATHISTORY LATEST {bob.nick} * 10", lambda b: len(b.lines) == 2)
    assert a_view.kind == "chathistory" and a_view.param == bob.nick, a_view
    assert shape(a_view) == [
        (alice.nick, "PRIVMSG", bob.nick, "hello bob"),
        (bob.nick, "NOTICE", alice.nick, "hello alice"),
    ], a_view
    same_messages(a_view, [a_echo, b_echo])

    b_view = fetch_until(bob, f"CHATHISTORY LATEST {alice.nick} * 10", lambda b: len(b.lines) == 2)
    assert shape(b_view) == shape(a_view), b_view
    same_messages(b_view, [a_echo, b_echo])
    same_messages(fetch(bob, f"CHATHISTORY BEFORE {alice.nick} msgid={b_echo.tags['msgid']} 10"), [a_echo])

    for other in (alice.nick, bob.nick):
        carol.send(f"CHATHISTORY LATEST {other} * 10")
        line = fail_line(carol, "INVALID_TARGET")
        assert line.params[2:4] == ["LATEST", other], line.raw
    carol.expect_none("hello", within=0.5)


def test_a_burst_of_private_messages_keeps_its_order_in_history(clients, uniq):
    alice = clients.user(uniq("ba"), caps=(*HISTORY_CAPS, "echo-message"))
    bob = clients.user(uniq("bb"), gw=1, caps=("message-tags", "server-time"))
    texts = [f"burst {i:02}" for i in range(30)]
    alice.send_raw("".join(f"PRIVMSG {bob.nick} :{t}\r\n" for t in texts).encode())
    live = bob.collect(by(alice.nick) + rf"PRIVMSG {esc(bob.nick)} :burst", len(texts), 15)
    echoes = alice.collect(by(alice.nick) + rf"PRIVMSG {esc(bob.nick)} :burst", len(texts), 15)
    assert [ln.text for ln in live] == texts and [ln.text for ln in echoes] == texts, (
        [ln.text for ln in live], [ln.text for ln in echoes])
    b = fetch_until(alice, f"CHATHISTORY LATEST {bob.nick} * 100", lambda b: len(b.lines) == len(texts))
    same_messages(b, live)


def test_an_accounts_conversation_follows_it_to_its_next_session(platform, clients, uniq):
    acct_a, acct_b = uniq("acca"), uniq("accb")
    pw_a, pw_b = create_account(platform, acct_a), create_account(platform, acct_b)
    caps = (*HISTORY_CAPS, "echo-message")
    alice = sasl_user(clients, platform, uniq("na"), acct_a, pw_a, caps)
    bob = sasl_user(clients, platform, uniq("nb"), acct_b, pw_b, caps, gw=1)
    alice.send(f"PRIVMSG {bob.nick} :remember this")
    echo = alice.expect(by(alice.nick) + rf"PRIVMSG {esc(bob.nick)} :remember this$")
    bob.expect(by(alice.nick) + rf"PRIVMSG {esc(bob.nick)} :remember this$")
    fetch_until(alice, f"CHATHISTORY LATEST {bob.nick} * 10", lambda b: len(b.lines) == 1)
    alice.send("QUIT :later")
    alice.expect_closed()

    # a new session of the same account, under another nick, asking by the
    # peer's current nick (online) and by its account name
    again = sasl_user(clients, platform, uniq("na2"), acct_a, pw_a, HISTORY_CAPS, gw=1)
    for peer in (bob.nick, acct_b):
        b = fetch(again, f"CHATHISTORY LATEST {peer} * 10")
        same_messages(b, [echo])
        assert b.lines[0].params[0] == peer, b


# ------------------------------------------------------------ offline messages


def test_messages_to_an_offline_account_are_delivered_once_at_login(platform, clients, uniq):
    bob = uniq("off")
    pw = create_account(platform, bob)
    alice = clients.user(uniq("sa"), caps=("echo-message", "message-tags", "server-time"))

    alice.send(f"PRIVMSG {bob} :first while away")
    alice.send(f"PRIVMSG {bob} :second while away")
    alice.send(f"NOTICE {bob} :a notice too")
    echoes = [
        alice.expect(by(alice.nick) + rf"PRIVMSG {esc(bob)} :first while away$", LOGIN_TIMEOUT),
        alice.expect(by(alice.nick) + rf"PRIVMSG {esc(bob)} :second while away$", LOGIN_TIMEOUT),
        alice.expect(by(alice.nick) + rf"NOTICE {esc(bob)} :a notice too$", LOGIN_TIMEOUT),
    ]
    assert echoes[0].n < echoes[1].n < echoes[2].n, [e.raw for e in echoes]
    assert all(e.tags.get("msgid") and TIME_RX.match(e.tags.get("time", "")) for e in echoes)
    notice = alice.expect(rf"^(?:@\S+ )?:\S+ NOTICE {esc(alice.nick)} :{esc(bob)} {esc(OFFLINE_NOTICE)}$")
    assert "!" not in (notice.source or ""), f"the notice comes from the server: {notice.raw}"
    alice.expect_none(re.escape(OFFLINE_NOTICE), within=1.0)
    alice.expect_none(r" 401 ", within=0.1)

    nick = uniq("back")
    b = sasl_user(clients, platform, nick, bob, pw, ("batch", "server-time", "message-tags"), gw=1)
    start = b.expect(r"^(?:@\S+ )?:\S+ BATCH \+(\S+) chathistory (\S+)$", 10)
    assert start.params[2] == alice.nick, start.raw
    ref = start.params[0][1:]
    end = b.expect(rf":\S+ BATCH -{re.escape(ref)}$")
    lines = [ln for ln in b.collect(rf"batch={re.escape(ref)}[; ]", 100, 0) if ln.n < end.n]
    got = [(ln.nick, ln.command, ln.params[0], ln.text, ln.tags.get("msgid"), ln.tags.get("time")) for ln in lines]
    want = [(alice.nick, e.command, nick, e.text, e.tags["msgid"], e.tags["time"]) for e in echoes]
    assert got == want, f"pending delivery:\n got {got}\nwant {want}"
    b.expect_none(r"while away|a notice too", within=1.0)

    # shown once: acknowledged, so the next login shows nothing
    assert wait_until(lambda: pending_rows(platform, bob) == 0, 10), "the delivery was never acknowledged"
    b.send("QUIT")
    b.expect_closed()
    again = sasl_user(clients, platform, uniq("back2"), bob, pw, ("batch", "server-time"))
    again.expect_none(r"while away|a notice too| BATCH ", within=3.0)
    # …but it stays in the conversation's history
    again.send("CAP REQ :draft/chathistory message-tags")
    again.expect(r" CAP \S+ ACK ")
    same_messages(fetch(again, f"CHATHISTORY LATEST {alice.nick} * 10"), echoes)


def test_pending_messages_shown_at_nickserv_identify_with_a_text_timestamp(platform, clients, uniq):
    bob = uniq("nsoff")
    pw = create_account(platform, bob)
    alice = clients.user(uniq("ns"), caps=("echo-message",))
    alice.send(f"PRIVMSG {bob} :kept for you")
    alice.expect(by(alice.nick) + rf"PRIVMSG {esc(bob)} :kept for you$", LOGIN_TIMEOUT)

    # no batch, no server-time: bare lines, the time at the start of the text
    c = clients.user(uniq("nsb"), gw=1)
    c.expect_none("kept for you", within=1.0)
    nickserv(c, f"IDENTIFY {bob} {pw}")
    c.expect(r" 900 ", LOGIN_TIMEOUT)
    line = c.expect(by(alice.nick) + rf"PRIVMSG {esc(c.nick)} :", 10)
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] kept for you", line.text), line.raw
    assert not line.raw.startswith("@"), line.raw


def test_offline_messages_to_several_accounts_in_a_row(platform, clients, uniq):
    names = [uniq("many") for _ in range(3)]
    for n in names:
        create_account(platform, n)
    alice = clients.user(uniq("mr"), caps=("echo-message",))
    for i in range(2):
        for n in names:
            alice.send(f"PRIVMSG {n} :round {i}")
    for i in range(2):
        for n in names:
            alice.expect(by(alice.nick) + rf"PRIVMSG {esc(n)} :round {i}$", LOGIN_TIMEOUT)
    notices = alice.collect(re.escape(OFFLINE_NOTICE), 10, 2.0)
    assert sorted(ln.text.split()[0] for ln in notices) == sorted(names), [ln.raw for ln in notices]
    alice.expect_none(r" (?:401|439) ", within=0.2)


def test_a_nick_that_is_no_account_is_401(platform, clients, uniq):
    disabled = uniq("dis")
    create_account(platform, disabled)
    assert platform.chatctl("account", "disable", disabled).returncode == 0
    c = clients.user(uniq("nf"), caps=("echo-message",))
    for target in (uniq("nobody"), "not[an]account", disabled):
        c.send(f"PRIVMSG {target} :anyone there?")
        line = c.expect(r" 401 ", LOGIN_TIMEOUT)
        assert line.params[1] == target, line.raw
    c.send(f"NOTICE {uniq('nobody')} :quiet")
    c.expect_none(r" 401 |quiet|" + re.escape(OFFLINE_NOTICE), within=2.0)
    c.expect_none("anyone there", within=0.1)
