"""MUC moderation from XMPP (issue 5, XEP-0045 `muc#admin`): roles and
bans set by an XMPP moderator are the router's channel modes and kicks,
so IRC members see MODE and KICK and XMPP members see role changes.

`@xmpp/client` users (tests/js/xmpp-agent.mjs) and a raw IRC client.
"""

from __future__ import annotations

import secrets

from harness.raw import esc
from harness.xmppagent import C, MUC_USER, XmppAgent, create_account, is_presence

CAPS = ("echo-message", "message-tags", "server-time")
MUC = "conference.localhost"
ADMIN = "http://jabber.org/protocol/muc#admin"


def join(agent: XmppAgent, room: str, nick: str):
    agent.send(f"<presence to='{room}@{MUC}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>"
               "<history maxstanzas='0'/></x></presence>")
    me = agent.expect(lambda s: s.tag == C + "presence" and "110" in s.codes() and s.get("type") is None,
                      what="self-presence")
    agent.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")
    return me


def admin(agent: XmppAgent, room: str, item: str, kind: str = "set"):
    ident = "adm" + secrets.token_hex(4)
    agent.send(f"<iq type='{kind}' to='{room}@{MUC}' id='{ident}'><query xmlns='{ADMIN}'>{item}</query></iq>")
    return agent.expect(lambda s: s.tag == C + "iq" and s.get("id") == ident, what=f"answer to {ident}")


def role_of(s) -> str | None:
    item = s.find(f"{MUC_USER}x/{MUC_USER}item")
    return None if item is None else item.get("role")


def test_moderation_from_xmpp_is_irc_modes_and_kicks(platform, clients, agents, uniq):
    room = uniq("adm")
    chan = "#" + room
    alice_name, apw = create_account(platform, uniq, "ma")
    bob_name, bpw = create_account(platform, uniq, "mb")
    alice = agents(platform, alice_name, apw)
    me = join(alice, room, alice_name)
    assert role_of(me) == "moderator", me  # she created the room
    bob = agents(platform, bob_name, bpw, gw=1)
    join(bob, room, bob_name)
    carol = clients.user(uniq("ic"), gw=1, caps=CAPS)
    carol.join(chan)
    alice.expect(is_presence(f"{room}@{MUC}/{carol.nick}"), what="carol's join")

    # Roles are +o/+v, seen by IRC as MODE and by XMPP as the new role.
    ans = admin(alice, room, f"<item nick='{bob_name}' role='moderator'/>")
    assert ans.get("type") == "result", ans
    carol.expect(rf" MODE {esc(chan)} \+o {esc(bob_name)}$")
    p = bob.expect(lambda s: s.tag == C + "presence" and s.get("from") == f"{room}@{MUC}/{bob_name}"
                   and role_of(s) == "moderator", what="bob moderator")
    assert p is not None
    ans = admin(alice, room, f"<item nick='{bob_name}' role='participant'/>")
    assert ans.get("type") == "result", ans
    carol.expect(rf" MODE {esc(chan)} -o\+v {esc(bob_name)} {esc(bob_name)}$")
    # Already a participant: nothing to do, still a result.
    assert admin(alice, room, f"<item nick='{bob_name}' role='participant'/>").get("type") == "result"

    # Kick an IRC user with a reason.
    ans = admin(alice, room, f"<item nick='{carol.nick}' role='none'><reason>bye</reason></item>")
    assert ans.get("type") == "result", ans
    carol.expect(rf" KICK {esc(chan)} {esc(carol.nick)} :bye$")

    # Ban bob's account: he is put out and cannot come back; IRC sees $a:.
    carol.join(chan)
    ans = admin(alice, room, f"<item jid='{bob_name}@localhost' affiliation='outcast'><reason>no</reason></item>")
    assert ans.get("type") == "result", ans
    carol.expect(rf" MODE {esc(chan)} \+b \$a:{esc(bob_name)}$")
    out = bob.expect(is_presence(f"{room}@{MUC}/{bob_name}", "unavailable"), what="bob put out")
    assert "307" in out.codes(), out
    bob.send(f"<presence to='{room}@{MUC}/{bob_name}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    err = bob.expect(lambda s: s.tag == C + "presence" and s.get("type") == "error", what="banned join")
    assert err.error() == "forbidden", err
    bans = admin(alice, room, "<item affiliation='outcast'/>", kind="get")
    jids = [i.get("jid") for i in bans.el.iter("{%s}item" % ADMIN)]
    assert jids == [f"{bob_name}@localhost"], bans
    mods = admin(alice, room, "<item role='moderator'/>", kind="get")
    assert [i.get("nick") for i in mods.el.iter("{%s}item" % ADMIN)] == [alice_name], mods
    # Lifting the ban lets him in again.
    assert admin(alice, room, f"<item jid='{bob_name}@localhost' affiliation='none'/>").get("type") == "result"
    carol.expect(rf" MODE {esc(chan)} -b \$a:{esc(bob_name)}$")
    bob.send(f"<presence to='{room}@{MUC}/{bob_name}'><x xmlns='http://jabber.org/protocol/muc'>"
             "<history maxstanzas='0'/></x></presence>")
    carol.expect(rf":{esc(bob_name)}!\S+ JOIN ")
    bob.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="rejoined")

    # Errors: a non-moderator, an absent nick, a room one is not in, two items.
    err = admin(bob, room, f"<item nick='{alice_name}' role='none'/>")
    assert err.get("type") == "error" and err.error() == "forbidden", err
    err = admin(alice, room, "<item nick='nobody-here' role='none'/>")
    assert err.error() == "item-not-found", err
    err = admin(alice, uniq("elsewhere"), f"<item nick='{bob_name}' role='none'/>")
    assert err.error() == "not-acceptable", err
    err = admin(alice, room, f"<item nick='{bob_name}' role='none'/><item nick='{carol.nick}' role='none'/>")
    assert err.error() == "bad-request", err
    err = admin(alice, room, f"<item jid='{bob_name}@localhost' affiliation='owner'/>")
    assert err.error() == "feature-not-implemented", err
