"""XMPP over WebSocket, part 2 (issue 5): XMPP clients in the same rooms,
conversations and history as IRC clients.

The XMPP side is `@xmpp/client` in Node (tests/js/xmpp-agent.mjs, through
harness.xmppagent); the IRC side raw sockets. Covered: MUC join burst
(occupants, self-presence 110/210, subject), groupchat both ways with
stanza-id = msgid, one order for IRC and XMPP members on two gateways,
leave, kick; one-to-one messages both ways and to an offline account;
join history and MAM with RSM paging; disco; the errors.
"""

from __future__ import annotations

import re

from harness.raw import by, esc
from harness.xmppagent import (
    C, DELAY, FORWARD, MAM, MUC_USER, RSM, SID, XmppAgent, create_account, is_message, is_presence,
)

CAPS = ("echo-message", "message-tags", "server-time")
MUC = "conference.localhost"


def join(agent: XmppAgent, room: str, nick: str, history: int = 0) -> list:
    """Joins `room` and returns the burst up to the subject (presences first)."""
    agent.send(
        f"<presence to='{room}@{MUC}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>"
        f"<history maxstanzas='{history}'/></x></presence>"
    )
    me = agent.expect(lambda s: s.tag == C + "presence" and "110" in s.codes() and s.get("type") is None,
                      what="self-presence")
    subject = agent.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None
                           and s.get("from", "").startswith(f"{room}@{MUC}"), what="subject")
    return [me, subject]


def groupchat(agent: XmppAgent, room: str, text: str, ident: str) -> None:
    agent.send(f"<message to='{room}@{MUC}' type='groupchat' id='{ident}'><body>{text}</body></message>")


def test_irc_and_xmpp_meet_in_one_room_in_one_order(platform, clients, agents, uniq):
    room = uniq("mix")
    chan = "#" + room
    name, pw = create_account(platform, uniq, "xa")
    bob = clients.user(uniq("ib"), gw=1, caps=CAPS)
    carol = clients.user(uniq("ic"), gw=0, caps=CAPS)
    bob.join(chan)
    bob.send(f"TOPIC {chan} :the mixed room")
    bob.expect(rf" TOPIC {esc(chan)} :the mixed room$")

    alice = agents(platform, name, pw, gw=0)
    # A nick other than the account's is refused politely: the session's
    # nick is used, status 210 says so.
    me, subject = join(alice, room, "wanted-nick")
    assert me.get("from") == f"{room}@{MUC}/{name}", me
    assert {"110", "210"} <= me.codes(), me
    assert subject.find(C + "subject").text == "the mixed room", subject
    occupant = alice.all(is_presence(f"{room}@{MUC}/{bob.nick}"))
    assert occupant, "no presence for the IRC occupant"
    item = occupant[0].find(f"{MUC_USER}x/{MUC_USER}item")
    assert item.get("role") == "moderator" and item.get("affiliation") == "admin", occupant[0]
    bob.expect(rf"^(?:@\S+ )?:{re.escape(name)}!\S+ JOIN {esc(chan)}")

    carol.join(chan)
    alice.expect(is_presence(f"{room}@{MUC}/{carol.nick}"), what="carol's join")

    # Messages from both sides, interleaved.
    texts = []
    for n in range(10):
        if n % 3 == 0:
            groupchat(alice, room, f"x{n}", f"cid{n}")
        else:
            (bob if n % 2 else carol).send(f"PRIVMSG {chan} :i{n}")
        texts.append(f"x{n}" if n % 3 == 0 else f"i{n}")

    def irc_seq(client):
        got = client.collect(rf" PRIVMSG {esc(chan)} :[xi]\d+$", 10, timeout=15)
        return [(ln.text, ln.tags.get("msgid")) for ln in got]

    bob_seq, carol_seq = irc_seq(bob), irc_seq(carol)
    def stream_message(s) -> bool:
        return s.get("type") == "groupchat" and re.fullmatch(r"[xi]\d+", s.body() or "") is not None

    xmpp = [alice.expect(stream_message, what=f"message {n}") for n in range(10)]
    alice_seq = [(s.body(), s.find(SID + "stanza-id").get("id")) for s in xmpp]
    assert sorted(t for t, _ in bob_seq) == sorted(texts)
    assert bob_seq == carol_seq == alice_seq, f"\nbob   {bob_seq}\ncarol {carol_seq}\nalice {alice_seq}"
    # Own messages are reflected with the client's id, from our occupant JID.
    for s in xmpp:
        if s.body().startswith("x"):
            assert s.get("from") == f"{room}@{MUC}/{name}" and s.get("id") == "cid" + s.body()[1:], s
            assert s.find(SID + "stanza-id").get("by") == f"{room}@{MUC}", s
    # IRC sees the XMPP user as an ordinary member.
    bob.send(f"NAMES {chan}")
    bob.expect(rf" 353 .* :.*\b{re.escape(name)}\b")

    # /me both ways.
    alice.send(f"<message to='{room}@{MUC}' type='groupchat'><body>/me waves</body></message>")
    bob.expect(rf" PRIVMSG {esc(chan)} :\x01ACTION waves\x01$")
    carol.send(f"PRIVMSG {chan} :\x01ACTION nods\x01")
    alice.expect(is_message(f"{room}@{MUC}/{carol.nick}", "groupchat", "/me nods"))

    # +t: only operators set the subject; +o from IRC makes the XMPP user a
    # moderator, and then the subject is the IRC topic.
    alice.send(f"<message to='{room}@{MUC}' type='groupchat' id='t0'><subject>not yet</subject></message>")
    err = alice.expect(lambda s: s.get("id") == "t0" and s.get("type") == "error")
    assert err.error() == "forbidden", err
    bob.send(f"MODE {chan} +o {name}")
    mod = alice.expect(lambda s: s.tag == C + "presence" and s.get("from") == f"{room}@{MUC}/{name}"
                       and s.find(f"{MUC_USER}x/{MUC_USER}item") is not None
                       and s.find(f"{MUC_USER}x/{MUC_USER}item").get("role") == "moderator")
    assert "110" in mod.codes(), mod
    alice.send(f"<message to='{room}@{MUC}' type='groupchat'><subject>set from xmpp</subject></message>")
    bob.expect(rf":{re.escape(name)}!\S+ TOPIC {esc(chan)} :set from xmpp$")

    # Leaving: IRC sees PART, XMPP its own unavailable presence (110).
    carol.send(f"PART {chan} :bye")
    gone = alice.expect(is_presence(f"{room}@{MUC}/{carol.nick}", "unavailable"))
    assert gone.find(C + "status").text == "bye", gone
    alice.send(f"<presence to='{room}@{MUC}/{name}' type='unavailable'/>")
    left = alice.expect(is_presence(f"{room}@{MUC}/{name}", "unavailable"))
    assert "110" in left.codes(), left
    bob.expect(rf":{re.escape(name)}!\S+ PART {esc(chan)}")


def test_kick_and_errors_in_rooms(platform, clients, agents, uniq):
    room = uniq("kick")
    chan = "#" + room
    name, pw = create_account(platform, uniq, "xk")
    op = clients.user(uniq("op"), caps=CAPS)
    op.join(chan)
    alice = agents(platform, name, pw)

    # Not in the room: groupchat refused with not-acceptable.
    groupchat(alice, room, "hello?", "early")
    err = alice.expect(lambda s: s.get("type") == "error" and s.get("id") == "early")
    assert err.error() == "not-acceptable", err

    # A keyed room: not-authorized without the password, in with it.
    op.send(f"MODE {chan} +k sesame")
    op.expect(rf" MODE {esc(chan)} \+k")
    alice.send(f"<presence to='{room}@{MUC}/{name}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    err = alice.expect(lambda s: s.tag == C + "presence" and s.get("type") == "error")
    assert err.error() == "not-authorized" and err.get("from") == f"{room}@{MUC}/{name}", err
    alice.send(
        f"<presence to='{room}@{MUC}/{name}'><x xmlns='http://jabber.org/protocol/muc'>"
        "<password>sesame</password><history maxstanzas='0'/></x></presence>"
    )
    alice.expect(lambda s: s.tag == C + "presence" and "110" in s.codes(), what="joined with the key")

    # Kicked from IRC: unavailable with 307 and 110, the kicker as actor.
    op.send(f"KICK {chan} {name} :out")
    kicked = alice.expect(is_presence(f"{room}@{MUC}/{name}", "unavailable"))
    assert {"307", "110"} <= kicked.codes(), kicked
    item = kicked.find(f"{MUC_USER}x/{MUC_USER}item")
    assert item.find(MUC_USER + "actor").get("nick") == op.nick and item.find(MUC_USER + "reason").text == "out"
    groupchat(alice, room, "still here?", "after-kick")
    err = alice.expect(lambda s: s.get("type") == "error" and s.get("id") == "after-kick")
    assert err.error() == "not-acceptable", err

    # A malformed room name and a join without a nick.
    alice.send(f"<presence to='a,b@{MUC}/{name}'/>")
    err = alice.expect(lambda s: s.tag == C + "presence" and s.get("type") == "error")
    assert err.error() == "jid-malformed", err
    alice.send(f"<presence to='{room}@{MUC}'/>")
    err = alice.expect(lambda s: s.tag == C + "presence" and s.get("type") == "error")
    assert err.error() == "jid-malformed", err
    # Another server: no server-to-server.
    alice.send("<message to='someone@elsewhere.example' type='chat' id='far'><body>hi</body></message>")
    err = alice.expect(lambda s: s.get("id") == "far")
    assert err.error() == "service-unavailable", err


def test_one_to_one_between_irc_and_xmpp(platform, clients, agents, uniq):
    name, pw = create_account(platform, uniq, "xd")
    alice = agents(platform, name, pw, gw=1)
    bob = clients.user(uniq("db"), gw=0, caps=CAPS)

    bob.send(f"PRIVMSG {name} :hello from irc")
    echo = bob.expect(by(bob.nick) + rf"PRIVMSG {esc(name)} :hello from irc$")
    got = alice.expect(is_message(f"{bob.nick}@localhost", "chat", "hello from irc"))
    assert got.find(SID + "stanza-id").get("id") == echo.tags["msgid"], got

    alice.send(f"<message to='{bob.nick}@localhost' type='chat' id='r1'><body>hello from xmpp</body></message>")
    bob.expect(by(name) + rf"PRIVMSG {esc(bob.nick)} :hello from xmpp$")
    # Typing notifications travel as the IRC typing tag and back.
    alice.send(f"<message to='{bob.nick}@localhost' type='chat'>"
               "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    bob.expect(r"^@\S*\+typing=active\S* :" + re.escape(name) + rf"!\S+ TAGMSG {esc(bob.nick)}$")

    # Two XMPP users talk too; the recipient's history holds the conversation.
    other, opw = create_account(platform, uniq, "xe")
    eve = agents(platform, other, opw, gw=0)
    eve.send(f"<message to='{name}@localhost' type='chat'><body>xmpp to xmpp</body></message>")
    alice.expect(is_message(f"{other}@localhost", "chat", "xmpp to xmpp"))
    alice.send(
        "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'>"
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
        f"<field var='with'><value>{bob.nick}@localhost</value></field></x></query></iq>"
    )
    fin = alice.expect(lambda s: s.tag == C + "iq" and s.get("id") == "mam1")
    assert fin.get("type") == "result" and fin.find(MAM + "fin").get("complete") == "true", fin
    results = [s.find(f"{MAM}result/{FORWARD}forwarded/{C}message") for s in alice.all(
        lambda s: s.find(MAM + "result") is not None and s.find(MAM + "result").get("queryid") == "q1")]
    assert [m.find(C + "body").text for m in results] == ["hello from irc", "hello from xmpp"], results
    assert results[1].get("from") == f"{name}@localhost" and results[1].get("to") == f"{bob.nick}@localhost"


def test_offline_messages_wait_for_the_next_xmpp_login(platform, clients, agents, uniq):
    name, pw = create_account(platform, uniq, "xo")
    bob = clients.user(uniq("ob"), caps=CAPS)
    bob.send(f"PRIVMSG {name} :while you were out")
    bob.expect(by(bob.nick) + rf"PRIVMSG {esc(name)} :while you were out$", 10)
    sender, spw = create_account(platform, uniq, "xs")
    eve = agents(platform, sender, spw)
    eve.send(f"<message to='{name}@localhost' type='chat' id='o1'><body>xmpp offline too</body></message>")
    eve.expect_none(lambda s: s.get("id") == "o1", within=1.5)
    # Nobody of that name at all: service-unavailable.
    eve.send("<message to='nobody-by-that-name@localhost' type='chat' id='o2'><body>?</body></message>")
    assert eve.expect(lambda s: s.get("id") == "o2").error() == "service-unavailable"

    alice = agents(platform, name, pw, gw=1)
    first = alice.expect(is_message(f"{bob.nick}@localhost", "chat", "while you were out"))
    second = alice.expect(is_message(f"{sender}@localhost", "chat", "xmpp offline too"))
    assert first.find(DELAY + "delay") is not None and second.find(DELAY + "delay") is not None
    alice.close()
    again = agents(platform, name, pw)
    again.expect_none(lambda s: s.body() in ("while you were out", "xmpp offline too"), within=2.0)


def test_join_history_and_mam_on_a_room(platform, clients, agents, uniq):
    room = uniq("arch")
    chan = "#" + room
    name, pw = create_account(platform, uniq, "xm")
    bob = clients.user(uniq("mb"), gw=1, caps=CAPS)
    bob.join(chan)
    alice = agents(platform, name, pw)
    join(alice, room, name)
    for n in range(12):
        if n % 2:
            groupchat(alice, room, f"m{n:02d}", f"a{n}")
        else:
            bob.send(f"PRIVMSG {chan} :m{n:02d}")
        bob.expect(rf" PRIVMSG {esc(chan)} :m{n:02d}$")
    echoed = [(ln.text, ln.tags["msgid"]) for ln in bob.history if re.search(rf" PRIVMSG {esc(chan)} :m\d\d$", ln.raw)]
    assert [t for t, _ in echoed] == [f"m{n:02d}" for n in range(12)]

    # A second XMPP session joining with history gets the last 5, delayed,
    # before the subject.
    other, opw = create_account(platform, uniq, "xh")
    eve = agents(platform, other, opw, gw=1)
    eve.send(f"<presence to='{room}@{MUC}/{other}'><x xmlns='http://jabber.org/protocol/muc'>"
             "<history maxstanzas='5'/></x></presence>")
    eve.expect(lambda s: s.find(C + "subject") is not None, what="subject")
    old = eve.all(lambda s: s.find(DELAY + "delay") is not None)
    assert [s.body() for s in old] == [f"m{n:02d}" for n in range(7, 12)], old
    assert [s.find(SID + "stanza-id").get("id") for s in old] == [i for _, i in echoed[7:]]

    def mam(qid: str, rsm: str) -> tuple[list[tuple[str, str]], object]:
        alice.send(f"<iq type='set' id='{qid}' to='{room}@{MUC}'><query xmlns='urn:xmpp:mam:2' queryid='{qid}'>"
                   f"<set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query></iq>")
        fin = alice.expect(lambda s: s.tag == C + "iq" and s.get("id") == qid, what=f"fin {qid}")
        assert fin.get("type") == "result", fin
        res = alice.all(lambda s: s.find(MAM + "result") is not None and s.find(MAM + "result").get("queryid") == qid)
        page = [(s.find(f"{MAM}result/{FORWARD}forwarded/{C}message/{C}body").text, s.find(MAM + "result").get("id"))
                for s in res]
        return page, fin.find(MAM + "fin")

    last, fin = mam("p1", "<max>5</max><before/>")
    assert last == echoed[7:], last
    assert fin.get("complete") == "false" and fin.find(f"{RSM}set/{RSM}first").text == echoed[7][1]
    before, fin = mam("p2", f"<max>5</max><before>{echoed[7][1]}</before>")
    assert before == echoed[2:7] and fin.get("complete") == "false", before
    start, fin = mam("p3", f"<max>5</max><before>{echoed[2][1]}</before>")
    assert start == echoed[:2] and fin.get("complete") == "true", start
    forward, fin = mam("p4", f"<max>100</max><after>{echoed[9][1]}</after>")
    assert forward == echoed[10:] and fin.get("complete") == "true", forward
    empty, fin = mam("p5", f"<max>5</max><after>{echoed[11][1]}</after>")
    assert empty == [] and fin.get("complete") == "true"

    # Not a member: the archive is forbidden.
    outsider, xpw = create_account(platform, uniq, "xn")
    x = agents(platform, outsider, xpw)
    x.send(f"<iq type='set' id='no' to='{room}@{MUC}'><query xmlns='urn:xmpp:mam:2'/></iq>")
    err = x.expect(lambda s: s.get("id") == "no")
    assert err.get("type") == "error" and err.error() == "forbidden", err


def test_disco_tells_what_exists(platform, clients, agents, uniq):
    room = uniq("disco")
    name, pw = create_account(platform, uniq, "xi")
    bob = clients.user(uniq("sb"), caps=CAPS)
    bob.join("#" + room)
    bob.send(f"MODE #{room} +k key")
    bob.expect(r" MODE ")
    alice = agents(platform, name, pw)

    def ask(ident: str, to: str, ns: str):
        alice.send(f"<iq type='get' id='{ident}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#{ns}'/></iq>")
        return alice.expect(lambda s: s.get("id") == ident)

    items = ask("d1", "localhost", "items")
    assert [i.get("jid") for i in items.el.iter("{http://jabber.org/protocol/disco#items}item")] == [MUC]
    rooms = ask("d2", MUC, "items")
    assert f"{room}@{MUC}" in [i.get("jid") for i in rooms.el.iter("{http://jabber.org/protocol/disco#items}item")]
    info = ask("d3", f"{room}@{MUC}", "info")
    feats = {f.get("var") for f in info.el.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert {"http://jabber.org/protocol/muc", "urn:xmpp:mam:2", "muc_passwordprotected", "muc_public"} <= feats, feats
    missing = ask("d4", f"no-such-room-{room}@{MUC}", "info")
    assert missing.get("type") == "error" and missing.error() == "item-not-found", missing
    server = ask("d5", "localhost", "info")
    assert "urn:xmpp:ping" in {f.get("var") for f in server.el.iter("{http://jabber.org/protocol/disco#info}feature")}
