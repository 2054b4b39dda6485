"""WHOWAS (issue 7): who used a nick lately, across gateways, after QUIT
and after NICK, with the count argument and the 406/369 numerics."""

from __future__ import annotations

import time

from harness.raw import esc


def test_whowas_after_quit_and_nick_change(platform, clients, uniq):
    asker = clients.user(uniq("wa"))
    me = esc(asker.nick)
    gone = clients.user(uniq("wg"), gw=1, realname="Gone Person")
    gone_nick = gone.nick
    gone.send("QUIT :bye")
    gone.expect(r"^ERROR ")
    renamed = clients.user(uniq("wr"), gw=1)
    old = renamed.nick
    renamed.send(f"NICK {uniq('wn')}")
    renamed.expect(rf"NICK :?\S+$")
    time.sleep(0.3)

    asker.send(f"WHOWAS {gone_nick}")
    asker.expect(rf" 314 {me} {esc(gone_nick)} \S+ \S+ \* :Gone Person$")
    asker.expect(rf" 312 {me} {esc(gone_nick)} \S+ :\w{{3}} \w{{3}} ")
    asker.expect(rf" 369 {me} {esc(gone_nick)} :End of WHOWAS$")
    asker.send(f"WHOWAS {old.upper()} 1")
    asker.expect(rf" 314 {me} {esc(old)} ")
    asker.expect(rf" 369 {me} {esc(old.upper())} :End of WHOWAS$")

    never = uniq("wz")
    asker.send(f"WHOWAS {never}")
    asker.expect(rf" 406 {me} {never} :There was no such nickname$")
    asker.expect(rf" 369 {me} {never} :End of WHOWAS$")
    asker.send("WHOWAS")
    asker.expect(rf" 431 {me} :No nickname given$")
