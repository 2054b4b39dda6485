"""IRC operators (issue 7): OPER against argon2 hashes from the
configuration (made with `chatctl oper hash`) and KILL across gateways,
with raw sockets and every error numeric."""

from __future__ import annotations

import subprocess

from harness.platform import bin_dir
from harness.raw import by, esc


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
    boss.expect(by(boss.nick) + rf"MODE {nick} :\+o$")

    boss.send("KILL")
    boss.expect(rf" 461 {nick} KILL ")
    boss.send("KILL nobody-here-xyz :gone")
    boss.expect(rf" 401 {nick} nobody-here-xyz ")
    # The victim is on the other gateway: killed there, seen quitting here.
    boss.send(f"KILL {victim.nick} :spamming")
    boss.expect(rf"NOTICE {nick} :\*\*\* Killed {esc(victim.nick)} \(spamming\)$")
    victim.expect(rf"^ERROR :Closing Link: .*Killed \({nick}: spamming\)")
    watcher.expect(by(victim.nick) + rf"QUIT :.*Killed \({nick}: spamming\)")
