"""IRCv3 `chghost` (issue 7): an operator's `CHGHOST <nick> <host>` changes
the host a user is shown with, on whichever gateway it is; the user gets
396 (and its own CHGHOST with the cap), members with `chghost` a CHGHOST
line once, members without it a QUIT and a JOIN back into each shared
channel with their status; WHOIS and WHO show the new host."""

from __future__ import annotations

from harness.raw import by, esc
from test_operators import oper_hash


def test_chghost_across_gateways_with_and_without_the_cap(make_platform, clients, uniq):
    plat = make_platform(gateways=2, env={"CHAT__IRC__OPERS__BOSS": oper_hash("host-boss-pw")})
    boss = clients.user(uniq("hb"), plat=plat)
    target = clients.user(uniq("ht"), gw=1, caps=("chghost",), plat=plat)
    capped = clients.user(uniq("hc"), caps=("chghost",), plat=plat)
    plain = clients.user(uniq("hp"), gw=1, plat=plat)
    one, two = "#" + uniq("hone"), "#" + uniq("htwo")
    target.join(one)
    target.join(two)
    for c in (capped, plain):
        c.join(one)
        c.join(two)
    target.send(f"MODE {two} +v {plain.nick}")  # target is op in both
    plain.expect(rf"MODE {esc(two)} \+v {esc(plain.nick)}$")
    t = esc(target.nick)

    # Errors first: not an operator, missing parameters, bad host, nobody.
    boss.send(f"CHGHOST {target.nick} staff.example")
    boss.expect(boss.num("481"))
    boss.send("OPER boss host-boss-pw")
    boss.expect(boss.num("381"))
    boss.send(f"CHGHOST {target.nick}")
    boss.expect(boss.num("461") + "CHGHOST ")
    boss.send(f"CHGHOST {target.nick} :bad host")
    boss.expect(r"FAIL CHGHOST INVALID_HOST ")
    boss.send(f"CHGHOST {target.nick} -dash")
    boss.expect(r"FAIL CHGHOST INVALID_HOST ")
    boss.send(f"CHGHOST {uniq('gone')} staff.example")
    boss.expect(boss.num("401"))

    boss.send(f"CHGHOST {target.nick} staff.example")
    boss.expect(rf"NOTICE {esc(boss.nick)} :\*\*\* Changed the host of {t} to staff\.example$")
    target.expect(target.num("396") + r"staff\.example :is now your displayed host$")
    own = target.expect(rf"^:{t}!\S+@127\.0\.0\.1 CHGHOST \S+ staff\.example$")
    user = own.params[0]

    # With the cap: one CHGHOST, from the old mask, whatever the channels.
    line = capped.expect(rf"^(?:@\S+ )?:{t}!{esc(user)}@127\.0\.0\.1 CHGHOST {esc(user)} staff\.example$")
    capped.expect_none(r" CHGHOST ", within=0.5)
    capped.expect_none(r" QUIT ", within=0.1)
    assert line.command == "CHGHOST"
    # Without it: one QUIT, a JOIN back into each channel, the status again.
    plain.expect(rf"^(?:@\S+ )?:{t}!\S+@127\.0\.0\.1 QUIT :Changing host$")
    joins = plain.collect(rf":{t}!{esc(user)}@staff\.example JOIN :?#", 2, 10)
    assert sorted(j.params[0] for j in joins) == sorted([one, two]), [j.raw for j in joins]
    modes = plain.collect(rf" MODE (?:{esc(one)}|{esc(two)}) \+o {t}$", 2, 10)
    assert len(modes) == 2, [m.raw for m in modes]
    plain.expect_none(r" QUIT ", within=0.5)

    # What everyone looks up shows the new host, on both gateways.
    capped.send(f"WHOIS {target.nick}")
    capped.expect(capped.num("311") + rf"{t} {esc(user)} staff\.example \* :")
    plain.send(f"WHO {one}")
    plain.expect(plain.num("352") + rf"{esc(one)} {esc(user)} staff\.example \S+ {t} ")
    plain.expect(plain.num("315"))
    # A message from it carries the new mask.
    target.send(f"PRIVMSG {one} :hello from my new host")
    capped.expect(rf":{t}!{esc(user)}@staff\.example PRIVMSG {esc(one)} :hello from my new host$")
    # The same host again changes nothing and tells nobody.
    boss.send(f"CHGHOST {target.nick} staff.example")
    boss.expect(r"NOTICE \S+ :\*\*\* Changed the host")
    capped.expect_none(r" CHGHOST ", within=0.7)
    assert "chghost" in capped.cap_ls()
