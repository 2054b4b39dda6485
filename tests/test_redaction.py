"""Message redaction seen by every protocol: IRC `REDACT` (IRCv3
draft/message-redaction) and XMPP message retraction (XEP-0424) in rooms.

* A redaction reaches IRC clients that negotiated the capability (as
  `REDACT #chan <msgid> [:reason]`), nobody else on IRC, and XMPP
  occupants as a groupchat `<retract/>` with a fallback body.
* History hides the redacted message from then on (CHATHISTORY), and a
  second redaction of it finds nothing.
* Only the author (same account, or same session for a guest) or a
  channel operator may delete a message: `FAIL REDACT REDACT_FORBIDDEN`
  (XMPP `forbidden`); an unknown id is `UNKNOWN_MSGID` (`item-not-found`);
  a target that is not one of the client's channels is `INVALID_TARGET`.

The gateway looks the message up in history before it asks the router,
so every test first waits until history has stored what it redacts.
"""

from __future__ import annotations

import secrets

from harness.raw import RawClient, by, esc
from harness.xmppagent import C, SID, XmppAgent, create_account, is_message
from test_chathistory import HISTORY_CAPS, fetch, fetch_until

REDACT_CAP = "draft/message-redaction"
CAPS = (*HISTORY_CAPS, "echo-message", REDACT_CAP)
MUC = "conference.localhost"
RETRACT = "{urn:xmpp:message-retract:1}"
FALLBACK = "{urn:xmpp:fallback:0}"


def fail_redact(c: RawClient, code: str, timeout: float = 12.0):
    """The next `FAIL REDACT <code> …` line (consumed)."""
    return c.expect(rf"^(?:@\S+ )?:\S+ FAIL REDACT {code}(?: |$)", timeout)


def say(c: RawClient, chan: str, text: str) -> str:
    """Sends a PRIVMSG (the client has echo-message) and returns its msgid."""
    c.send(f"PRIVMSG {chan} :{text}")
    echo = c.expect(by(c.nick) + rf"PRIVMSG {esc(chan)} :{esc(text)}$", 10)
    return echo.tags["msgid"]


def stored(viewer: RawClient, chan: str, msgid: str) -> None:
    """Waits until history has message `msgid`."""
    fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 50", lambda b: msgid in b.msgids)


def gone(viewer: RawClient, chan: str, msgid: str) -> None:
    """Waits until history no longer shows message `msgid`."""
    fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 50", lambda b: msgid not in b.msgids)


def redact_line(c: RawClient, actor: str, chan: str, msgid: str, reason: str | None = None):
    tail = f" :{esc(reason)}" if reason else ""
    return c.expect(by(actor) + rf"REDACT {esc(chan)} {esc(msgid)}{tail}$", 10)


def join_xmpp(agent: XmppAgent, room: str, nick: str) -> None:
    agent.send(f"<presence to='{room}@{MUC}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>"
               "<history maxstanzas='0'/></x></presence>")
    agent.expect(lambda s: s.tag == C + "presence" and "110" in s.codes() and s.get("type") is None,
                 what="self-presence")
    agent.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")


def is_retraction(msgid: str, frm: str | None = None):
    def pred(s) -> bool:
        r = s.find(RETRACT + "retract")
        return (s.tag == C + "message" and s.get("type") == "groupchat" and r is not None
                and r.get("id") == msgid and (frm is None or s.get("from") == frm))
    return pred


def test_own_redaction_reaches_every_protocol_and_leaves_history(platform, clients, agents, uniq):
    room = uniq("red")
    chan = "#" + room
    alice = clients.user(uniq("ra"), caps=CAPS)
    bob = clients.user(uniq("rb"), gw=1, caps=CAPS)
    carol = clients.user(uniq("rc"), caps=("message-tags", "echo-message"))
    for c in (alice, bob, carol):
        c.join(chan)
    name, pw = create_account(platform, uniq, "rx")
    xmpp = agents(platform, name, pw, gw=1)
    join_xmpp(xmpp, room, name)
    alice.expect(rf":{esc(name)}!\S+ JOIN ")

    keep = say(alice, chan, "this one stays")
    oops = say(alice, chan, "this one goes")
    stored(alice, chan, oops)

    alice.send(f"REDACT {chan} {oops} :wrong window")
    own = redact_line(alice, alice.nick, chan, oops, "wrong window")
    assert own.tags.get("msgid") and own.tags["msgid"] != oops, own
    redact_line(bob, alice.nick, chan, oops, "wrong window")
    got = xmpp.expect(is_retraction(oops, f"{room}@{MUC}/{alice.nick}"), what="the retraction")
    assert got.find(FALLBACK + "fallback").get("for") == "urn:xmpp:message-retract:1", got
    assert got.body(), got
    assert got.find(SID + "stanza-id").get("id") == own.tags["msgid"], got
    carol.expect_none(r" REDACT ", within=1.0)

    # History: gone for everyone, the other message still there; the
    # redaction is an event (shown with draft/event-playback only).
    gone(bob, chan, oops)
    batch = fetch(alice, f"CHATHISTORY LATEST {chan} * 50")
    assert keep in batch.msgids and oops not in batch.msgids, batch
    assert not any(ln.command == "REDACT" for ln in batch.lines), batch
    around = fetch(alice, f"CHATHISTORY AROUND {chan} msgid={oops} 10")
    assert oops not in around.msgids, around
    played = clients.user(uniq("rp"), caps=(*CAPS, "draft/event-playback"))
    played.join(chan)
    batch = fetch(played, f"CHATHISTORY LATEST {chan} * 50")
    redacts = [ln for ln in batch.lines if ln.command == "REDACT"]
    assert [ln.params[1:] for ln in redacts] == [[oops, "wrong window"]], batch
    assert oops not in [ln.tags.get("msgid") for ln in batch.lines if ln.command == "PRIVMSG"], batch

    # A deleted message cannot be deleted again.
    alice.send(f"REDACT {chan} {oops}")
    fail = fail_redact(alice, "UNKNOWN_MSGID")
    assert fail.params[2:4] == [chan, oops], fail
    bob.expect_none(r" REDACT ", within=0.5)


def test_who_may_redact_and_the_errors(platform, clients, uniq):
    chan = "#" + uniq("perm")
    op = clients.user(uniq("op"), caps=CAPS)
    member = clients.user(uniq("mb"), gw=1, caps=CAPS)
    outsider = clients.user(uniq("out"), caps=CAPS)
    op.join(chan)
    member.join(chan)
    op.expect(by(member.nick) + rf"JOIN :?{esc(chan)}")

    mine = say(op, chan, "from the operator")
    theirs = say(member, chan, "from a member")
    stored(op, chan, theirs)
    stored(op, chan, mine)

    # A member may not delete the operator's message.
    member.send(f"REDACT {chan} {mine} :no")
    fail = fail_redact(member, "REDACT_FORBIDDEN")
    assert fail.params[2:4] == [chan, mine], fail
    op.expect_none(r" REDACT ", within=0.5)
    # The operator may delete the member's.
    op.send(f"REDACT {chan} {theirs}")
    redact_line(op, op.nick, chan, theirs)
    redact_line(member, op.nick, chan, theirs)
    gone(op, chan, theirs)

    # Unknown ids, ids of other channels, events; bad targets; bad input.
    op.send(f"REDACT {chan} {secrets.token_hex(16)}")
    fail_redact(op, "UNKNOWN_MSGID")
    other = "#" + uniq("else")
    op.join(other)
    elsewhere = say(op, other, "in another channel")
    stored(op, other, elsewhere)
    op.send(f"REDACT {chan} {elsewhere}")
    fail_redact(op, "UNKNOWN_MSGID")
    op.send(f"REDACT {chan} :{'x' * 300}")
    fail = fail_redact(op, "UNKNOWN_MSGID")
    assert fail.params[3] == "*", fail
    op.send(f"REDACT {chan} :two words")
    fail_redact(op, "UNKNOWN_MSGID")
    outsider.send(f"REDACT {chan} {mine}")
    fail = fail_redact(outsider, "INVALID_TARGET")
    assert fail.params[2] == chan, fail
    op.send(f"REDACT {member.nick} {mine}")
    fail_redact(op, "INVALID_TARGET")
    op.send("REDACT #no*such*chan x")
    fail_redact(op, "INVALID_TARGET")
    op.send(f"REDACT {chan}")
    op.expect(op.num("461") + "REDACT ")
    # Nothing of that reached the channel, and the connection lives on.
    member.expect_none(r" REDACT ", within=0.5)
    op.ping()
    batch = fetch(member, f"CHATHISTORY LATEST {chan} * 50")
    assert mine in batch.msgids and theirs not in batch.msgids, batch


def test_xmpp_retraction_is_an_irc_redact(platform, clients, agents, uniq):
    room = uniq("xret")
    chan = "#" + room
    viewer = clients.user(uniq("rv"), caps=CAPS)
    viewer.join(chan)
    name, pw = create_account(platform, uniq, "xr")
    other, opw = create_account(platform, uniq, "xo")
    erin = agents(platform, name, pw)
    join_xmpp(erin, room, name)
    frank = agents(platform, other, opw, gw=1)
    join_xmpp(frank, room, other)
    viewer.expect(rf":{esc(other)}!\S+ JOIN ")

    # The room says it supports retraction.
    erin.send(f"<iq type='get' id='dr1' to='{room}@{MUC}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    info = erin.expect(lambda s: s.get("id") == "dr1")
    feats = {f.get("var") for f in info.el.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert "urn:xmpp:message-retract:1" in feats, info

    erin.send(f"<message to='{room}@{MUC}' type='groupchat' id='e1'><body>retract me</body></message>")
    echo = erin.expect(lambda s: is_message(type_="groupchat", body="retract me")(s) and s.get("id") == "e1",
                       what="reflection")
    msgid = echo.find(SID + "stanza-id").get("id")
    line = viewer.expect(rf":{esc(name)}!\S+ PRIVMSG {esc(chan)} :retract me$")
    assert line.tags["msgid"] == msgid
    stored(viewer, chan, msgid)

    # Someone else (no moderator) may not retract it.
    frank.send(f"<message to='{room}@{MUC}' type='groupchat' id='f1'>"
               f"<retract xmlns='urn:xmpp:message-retract:1' id='{msgid}'/></message>")
    err = frank.expect(lambda s: s.get("id") == "f1" and s.get("type") == "error", what="refusal")
    assert err.error() == "forbidden", err
    # An unknown id, and no id at all.
    frank.send(f"<message to='{room}@{MUC}' type='groupchat' id='f2'>"
               f"<retract xmlns='urn:xmpp:message-retract:1' id='nope{secrets.token_hex(4)}'/></message>")
    err = frank.expect(lambda s: s.get("id") == "f2" and s.get("type") == "error", what="unknown id")
    assert err.error() == "item-not-found", err
    frank.send(f"<message to='{room}@{MUC}' type='groupchat' id='f3'>"
               "<retract xmlns='urn:xmpp:message-retract:1'/></message>")
    err = frank.expect(lambda s: s.get("id") == "f3" and s.get("type") == "error", what="no id")
    assert err.error() == "bad-request", err
    viewer.expect_none(r" REDACT ", within=0.5)

    # The author retracts it, with the fallback a client sends.
    erin.send(f"<message to='{room}@{MUC}' type='groupchat' id='e2'>"
              f"<retract xmlns='urn:xmpp:message-retract:1' id='{msgid}'/>"
              "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
              "<body>This person attempted to retract a previous message.</body></message>")
    redact_line(viewer, name, chan, msgid)
    mine = erin.expect(is_retraction(msgid), what="own retraction")
    assert mine.get("id") == "e2", mine
    frank.expect(is_retraction(msgid, f"{room}@{MUC}/{name}"), what="frank sees it")
    # The fallback body was not a message of its own.
    viewer.expect_none(r"PRIVMSG .*attempted to retract", within=0.5)
    gone(viewer, chan, msgid)
