"""Connection registration: CAP negotiation, the welcome burst, ISUPPORT,
nick rules (also across gateways), registration errors, PING/PONG."""

from __future__ import annotations

import time

import pytest

from harness.libclient import LibClient
from harness.raw import esc

ALL_CAPS = {"cap-notify", "echo-message", "message-tags", "multi-prefix", "server-time", "batch"}


def test_cap_ls_302_lists_the_capabilities(clients):
    c = clients.connect()
    caps = c.cap_ls()
    assert ALL_CAPS <= caps, f"CAP LS 302 lacks {ALL_CAPS - caps}; got {sorted(caps)}"


def test_cap_req_is_all_or_nothing(clients, uniq):
    c = clients.connect()
    c.cap_ls()
    c.send("CAP REQ :echo-message server-time")
    ack = c.expect(r" CAP \S+ ACK ")
    assert set(ack.text.split()) == {"echo-message", "server-time"}, ack.raw

    c.send("CAP REQ :message-tags no-such-cap-xyz")
    nak = c.expect(r" CAP \S+ (?:NAK|ACK) ")
    assert nak.params[1] == "NAK", f"a REQ with an unknown cap must be NAKed whole: {nak.raw}"
    assert set(nak.text.split()) == {"message-tags", "no-such-cap-xyz"}, nak.raw

    c.send("CAP LIST")
    listed = c.expect(r" CAP \S+ LIST ")
    # (cap-notify may be listed: CAP LS 302 implies it)
    assert set(listed.text.split()) - {"cap-notify"} == {"echo-message", "server-time"}, (
        f"after a NAK nothing of that REQ may be enabled: {listed.raw}"
    )

    nick = uniq("capper")
    c.send(f"NICK {nick}")
    c.send("USER cap 0 * :Cap Tester")
    c.expect_none(r" 001 ", within=0.7)  # registration waits for CAP END
    c.send("CAP END")
    c.expect(rf" 001 {nick} ")


def test_welcome_burst_order_and_texts(clients, uniq):
    nick = uniq("welc")
    c = clients.connect()
    c.register(nick, user="wuser", realname="Welcome Tester")
    codes = [ln.command for ln in c.burst]
    for code in ("001", "002", "003", "004", "005", "251", "255", "265", "266"):
        assert code in codes, f"{code} missing from the registration burst {codes}"
    assert "376" in codes or "422" in codes, codes
    first = {code: codes.index(code) for code in set(codes)}
    assert first["001"] < first["002"] < first["003"] < first["004"] < first["005"], codes
    assert first["005"] < first["251"], f"LUSERS must follow ISUPPORT: {codes}"
    motd = first.get("375", first.get("422"))
    assert motd is not None and first["266"] < motd, f"MOTD must follow LUSERS: {codes}"

    welcome = c.burst[0]
    assert welcome.command == "001"
    assert "Welcome to the TestNet Network" in welcome.text, welcome.raw
    assert f"{nick}!" in welcome.text and "@" in welcome.text, welcome.raw
    your_host = next(ln for ln in c.burst if ln.command == "002")
    assert "Your host is" in your_host.text, your_host.raw
    myinfo = next(ln for ln in c.burst if ln.command == "004")
    assert len(myinfo.params) >= 5, f"004 needs <server> <version> <umodes> <cmodes>: {myinfo.raw}"
    # Every user mode the server has (+B bot, +i, +o operator, +s server
    # notices, +w) and the channel modes of CHANMODES and PREFIX.
    assert sorted(myinfo.params[3]) == sorted("Biosw"), myinfo.raw
    assert sorted(myinfo.params[4]) == sorted("bklimnstov"), myinfo.raw


def test_isupport_tokens(clients, uniq):
    c = clients.connect()
    c.register(uniq("isup"))
    lines = [ln for ln in c.burst if ln.command == "005"]
    assert lines, "no 005"
    tokens = {}
    for ln in lines:
        assert ln.text == "are supported by this server", ln.raw
        for tok in ln.params[1:-1]:
            key, _, value = tok.partition("=")
            tokens[key] = value
    assert tokens.get("CASEMAPPING") == "ascii", tokens
    assert tokens.get("CHANTYPES") == "#", tokens
    assert tokens.get("PREFIX") == "(ov)@+", tokens
    assert tokens.get("NICKLEN") == "30", tokens
    assert tokens.get("NETWORK") == "TestNet", tokens
    for key in ("CHANNELLEN", "TOPICLEN", "MAXTARGETS"):
        assert tokens.get(key, "").isdigit(), f"{key} missing or not a number: {tokens}"
    groups = tokens.get("CHANMODES", "").split(",")
    assert len(groups) == 4, f"CHANMODES must have 4 groups: {tokens.get('CHANMODES')}"
    assert "b" in groups[0] and "k" in groups[1] and "l" in groups[2], groups
    assert set("imnst") <= set(groups[3]), groups


def test_nick_missing_and_erroneous(clients):
    c = clients.connect()
    c.send("NICK")
    c.expect(r" 431 \S+ :")
    for bad in ("1digit", "-dash", "#chan", "bad!nick", "with@at", "x" * 31):
        c.send(f"NICK {bad}")
        c.expect(rf" 432 \S+ {esc(bad)} :", timeout=5)
    c.expect_none(r" 001 ", within=0.3)


def test_nick_in_use_same_gateway_other_gateway_and_case(clients, uniq):
    nick = uniq("taken")
    clients.user(nick, gw=0)
    same = clients.connect(gw=0)
    same.send(f"NICK {nick}")
    same.send("USER x 0 * :x")
    same.expect(rf" 433 \* {esc(nick)} :")

    other = clients.connect(gw=1)
    other.send(f"NICK {nick.upper()}")
    other.send("USER x 0 * :x")
    other.expect(rf" 433 \* {esc(nick.upper())} :", timeout=5)
    other.expect_none(r" 001 ", within=0.5)
    # the refused client can still register with a free nick
    free = uniq("free")
    other.send(f"NICK {free}")
    other.expect(rf" 001 {free} ")


def test_nick_change_to_a_nick_taken_on_the_other_gateway(clients, uniq):
    a, b = uniq("na"), uniq("nb")
    clients.user(a, gw=0)
    cb = clients.user(b, gw=1)
    cb.send(f"NICK {a.upper()}")
    cb.expect(rf" 433 {b} {esc(a.upper())} :")


def test_commands_before_registration_get_451(clients):
    c = clients.connect()
    c.send("JOIN #early")
    c.expect(r" 451 \S+ :")
    c.send("PRIVMSG someone :hi")
    c.expect(r" 451 \S+ :")


def test_user_with_too_few_params_gets_461(clients):
    c = clients.connect()
    c.send("USER onlyone 0 *")
    c.expect(r" 461 \S+ USER :")


def test_user_and_pass_after_registration_get_462(clients, uniq):
    c = clients.user(uniq("reg"))
    c.send("USER again 0 * :Again")
    c.expect(c.num("462"))
    c.send("PASS secret")
    c.expect(c.num("462"))


def test_unknown_command_gets_421(clients, uniq):
    c = clients.user(uniq("unk"))
    c.send("FROBNICATE a b")
    c.expect(c.num("421") + r"FROBNICATE :")


def test_client_ping_gets_pong(clients, uniq):
    c = clients.user(uniq("pinger"))
    c.send("PING :token-12345")
    pong = c.expect(r" PONG ")
    assert pong.params[-1] == "token-12345", pong.raw
    # before registration too
    early = clients.connect()
    early.send("PING :early-1")
    assert early.expect(r" PONG ").params[-1] == "early-1"


@pytest.fixture
def ping_gateway(platform):
    """An extra gateway on the session platform that PINGs after 2 s of
    silence and gives up 2 s later."""
    gw = platform.start_gateway({"CHAT__IRC__PING_INTERVAL_SECS": "2", "CHAT__IRC__PING_TIMEOUT_SECS": "2"})
    yield gw
    problem = gw.terminate()
    assert problem is None, problem


def test_server_pings_idle_clients_and_drops_silent_ones(clients, uniq, ping_gateway):
    silent = clients.connect(ping_gateway, auto_pong=False)
    silent.register(uniq("silent"))
    polite = clients.connect(ping_gateway)  # answers PINGs
    polite.register(uniq("polite"))

    silent.expect(r"^(?::\S+ )?PING ", timeout=6)
    err = silent.expect(r"^(?::\S+ )?ERROR ", timeout=8)
    assert "Ping timeout" in err.raw, err.raw
    silent.expect_closed(timeout=3)

    # the polite one was pinged too and, having answered, is still there
    polite.expect(r"^(?::\S+ )?PING ", timeout=1)
    time.sleep(3)
    assert not polite.closed
    polite.expect_none(r"^(?::\S+ )?ERROR ", within=0.1)
    polite.ping()


def test_irc_library_client_gets_welcome(platform, uniq):
    nick = uniq("lib")
    client = LibClient("127.0.0.1", platform.gateways[0].irc_port, nick)
    try:
        ev = client.wait_for("welcome", timeout=10)
        assert ev.target == nick
        assert any("TestNet" in a for a in ev.arguments), ev.arguments
        client.wait_for("featurelist", timeout=5)  # 005, parsed by the library
    finally:
        client.close()
