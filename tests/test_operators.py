"""IRC operators and connection limits (issue 7): OPER against argon2
hashes from the configuration (made with `chatctl oper hash`) and KILL
across gateways, with raw sockets and every error numeric; connections per
client address, counted across IRC, IRC over WebSocket and Tinode."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

from harness.platform import bin_dir
from harness.raw import WsRawClient, by, esc


def oper_hash(password: str) -> str:
    proc = subprocess.run([str(bin_dir() / "chatctl"), "oper", "hash"], input=password + "\n",
                          capture_output=True, text=True, timeout=60, check=True)
    phc = proc.stdout.strip()
    assert phc.startswith("$argon2id$"), proc.stdout
    return phc


def test_oper_and_kill(make_platform, clients, uniq):
    plat = make_platform(gateways=2, env={"CHAT__IRC__OPERS__BOSS": oper_hash("the-boss-password")})
    boss = clients.user(uniq("ob"), plat=plat)
    nick = esc(boss.nick)
    victim = clients.user(uniq("ov"), gw=1, plat=plat)
    watcher = clients.user(uniq("ow"), plat=plat)
    chan = "#" + uniq("opers")
    victim.join(chan)
    watcher.join(chan)

    boss.send(f"KILL {victim.nick} :too early")
    boss.expect(rf" 481 {nick} :Permission Denied")
    boss.send("OPER")
    boss.expect(rf" 461 {nick} OPER ")
    boss.send("OPER nobody whatever")
    boss.expect(rf" 491 {nick} :No O-lines")
    boss.send("OPER boss wrong-password")
    boss.expect(rf" 464 {nick} :Password incorrect$")
    boss.send("OPER BOSS the-boss-password")
    boss.expect(rf" 381 {nick} :You are now an IRC operator$")
    boss.expect(by(boss.nick) + rf"MODE {nick} :\+os$")
    boss.send(f"MODE {boss.nick}")
    boss.expect(rf" 221 {nick} \+\S*o")
    # Anyone's WHOIS, on either gateway, says so.
    victim.send(f"WHOIS {boss.nick}")
    victim.expect(rf" 313 {esc(victim.nick)} {nick} :is an IRC operator$")
    # +o cannot be taken by MODE; -o gives it up (and KILL with it).
    watcher.send(f"MODE {watcher.nick} +o")
    watcher.send(f"MODE {watcher.nick}")
    line = watcher.expect(rf" 221 {esc(watcher.nick)} ")
    assert "o" not in line.params[1], line.raw

    boss.send("KILL")
    boss.expect(rf" 461 {nick} KILL ")
    boss.send("KILL nobody-here-xyz :gone")
    boss.expect(rf" 401 {nick} nobody-here-xyz ")
    # The victim is on the other gateway: killed there, seen quitting here.
    boss.send(f"KILL {victim.nick} :spamming")
    boss.expect(rf"NOTICE {nick} :\*\*\* Killed {esc(victim.nick)} \(spamming\)$")
    victim.expect(rf"^ERROR :Closing Link: .*Killed \({nick}: spamming\)")
    watcher.expect(by(victim.nick) + rf"QUIT :.*Killed \({nick}: spamming\)")


def test_connections_per_address_are_limited_on_every_protocol(make_platform, clients, uniq):
    """With 127.0.0.1 not exempt and a limit of 3, the fourth connection
    from it is refused with the protocol's words, whichever protocol the
    others use; closing one makes room again."""
    plat = make_platform(gateways=1, env={"CHAT__IRC__MAX_CONNECTIONS_PER_ADDR": "3",
                                          "CHAT__IRC__CONNECTION_LIMIT_EXEMPT": "192.0.2.1"})
    held = [clients.user(uniq("cl"), plat=plat) for _ in range(2)]
    ws = WsRawClient(f"ws://127.0.0.1:{plat.gateway(0).http_port}/irc")
    ws.register(uniq("cw"))
    extra = clients.connect(0, plat)
    extra.expect(r"^ERROR :Closing Link: 127\.0\.0\.1 \(Too many connections from your address\)$")
    status, body = lp_create(plat)
    assert status == 503 and "too many connections from your address" in body, (status, body)
    held[0].send("QUIT :making room")
    held[0].expect(r"^ERROR ")
    time.sleep(0.3)
    again = clients.user(uniq("ca"), plat=plat)
    again.send("PING :ok")
    again.expect(r"PONG \S+ :ok$")
    ws.close()


def lp_create(plat):
    url = f"http://127.0.0.1:{plat.gateway(0).http_port}/v0/channels/lp?apikey=AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K"
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()



def test_giving_up_operator_status(make_platform, clients, uniq):
    plat = make_platform(gateways=1, env={"CHAT__IRC__OPERS__BOSS": oper_hash("the-boss-password")})
    boss = clients.user(uniq("og"), plat=plat)
    nick = esc(boss.nick)
    other = clients.user(uniq("oo"), plat=plat)
    boss.send("OPER boss the-boss-password")
    boss.expect(rf" 381 {nick} ")
    boss.send(f"MODE {boss.nick} -o")
    boss.expect(by(boss.nick) + rf"MODE {nick} :-os$")
    boss.send(f"KILL {other.nick} :no longer")
    boss.expect(rf" 481 {nick} :Permission Denied")
    other.send(f"WHOIS {boss.nick}")
    end = other.expect(rf" 318 {esc(other.nick)} {nick} ")
    assert not [ln for ln in other.history if ln.n < end.n and ln.command == "313"], "still shown as an operator"


def test_server_notices_reach_operators_with_plus_s(make_platform, clients, tinodes, uniq):
    plat = make_platform(gateways=2, env={"CHAT__IRC__OPERS__BOSS": oper_hash("notice-boss-pw")})
    boss = clients.user(uniq("sb"), plat=plat)
    nick = esc(boss.nick)
    plain = clients.user(uniq("sp"), plat=plat)
    # Only operators may set +s.
    plain.send(f"MODE {plain.nick} +s")
    plain.send(f"MODE {plain.nick}")
    umodes = plain.expect(plain.num("221"))
    assert "s" not in umodes.params[-1], umodes.raw
    boss.send("OPER boss notice-boss-pw")
    boss.expect(boss.num("381"))
    boss.expect(by(boss.nick) + rf"MODE {nick} :\+os$")
    notice = rf"^:\S+ NOTICE {nick} :\*\*\* Notice -- "

    # A client connecting and exiting on the other gateway, any protocol.
    comer = clients.user(uniq("sc"), gw=1, plat=plat)
    boss.expect(notice + rf"Client connecting: {esc(comer.nick)} \(\S+@\S+\) \[irc\] on ")
    comer.send("QUIT :see you")
    boss.expect(notice + rf"Client exiting: {esc(comer.nick)} \(\S+@\S+\) \[Quit: see you\] on ")
    tin = tinodes(plat, gw=1)
    login = uniq("stn")
    tin.call("create", login=login, password="pw-" + login + "-x", fn="Notice")
    boss.expect(notice + rf"Client connecting: \S+ \(\S+\) \[tinode\] on ")
    # A failed OPER, a KILL, a host change.
    plain.send("OPER boss wrong")
    plain.expect(plain.num("464"))
    boss.expect(notice + rf"Failed OPER attempt as boss by {esc(plain.nick)} ")
    victim = clients.user(uniq("sv"), gw=1, plat=plat)
    boss.send(f"KILL {victim.nick} :bye now")
    boss.expect(notice + rf"Received KILL message for {esc(victim.nick)} \(\S+\) from {nick} \(bye now\)$")
    boss.send(f"CHGHOST {plain.nick} cloaked.example")
    boss.expect(notice + rf"{nick} changed the host of {esc(plain.nick)} \(\S+\) to cloaked\.example$")

    # -s: no more notices; +s again: they come back.
    boss.send(f"MODE {boss.nick} -s")
    boss.expect(by(boss.nick) + rf"MODE {nick} :-s$")
    quiet = clients.user(uniq("sq"), gw=1, plat=plat)
    boss.expect_none(rf"Client connecting: {esc(quiet.nick)} ", within=1.0)
    boss.send(f"MODE {boss.nick} +s")
    boss.expect(by(boss.nick) + rf"MODE {nick} :\+s$")
    boss.ping()
    again = clients.user(uniq("sa"), gw=1, plat=plat)
    boss.expect(notice + rf"Client connecting: {esc(again.nick)} ")
    # Nobody else hears any of it.
    plain.expect_none(r"\*\*\* Notice -- ", within=0.3)
