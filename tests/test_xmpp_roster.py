"""XMPP IM (issue 5): rosters, presence subscriptions, presence broadcast
and probes, carbons, vCards and in-band registration.

Clients are `@xmpp/client` in Node (tests/js/xmpp-agent.mjs through
harness.xmppagent), except in-band registration, which happens before any
login and is driven with raw WebSocket frames. Rosters and subscription
states are read back from the auth service's PostgreSQL tables too, so a
test sees they are stored, not just relayed.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import xml.etree.ElementTree as ET

import pytest
import websockets

from harness.xmppagent import C, create_account, ws_url, XmppAgent, is_message, is_presence

ROSTER = "{jabber:iq:roster}"
CARBONS = "{urn:xmpp:carbons:2}"
FORWARD = "{urn:xmpp:forward:0}"
VCARD = "{vcard-temp}"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"


def iq(agent: XmppAgent, kind: str, payload: str, to: str | None = None):
    """Sends an iq and returns its answer (result or error)."""
    ident = "q" + secrets.token_hex(4)
    to_attr = f" to='{to}'" if to else ""
    agent.send(f"<iq type='{kind}' id='{ident}'{to_attr}>{payload}</iq>")
    return agent.expect(lambda s: s.tag == C + "iq" and s.get("id") == ident, what=f"answer to iq {ident}")


def roster_get(agent: XmppAgent, ver: str | None = None):
    v = f" ver='{ver}'" if ver is not None else ""
    return iq(agent, "get", f"<query xmlns='jabber:iq:roster'{v}/>")


def items(answer) -> dict[str, ET.Element]:
    q = answer.find(ROSTER + "query")
    return {} if q is None else {i.get("jid"): i for i in q.iter(ROSTER + "item")}


def is_push(jid: str, subscription: str | None = None, ask: str | None = "any"):
    def pred(s) -> bool:
        if s.tag != C + "iq" or s.get("type") != "set":
            return False
        item = s.find(f"{ROSTER}query/{ROSTER}item")
        return (
            item is not None
            and item.get("jid") == jid
            and (subscription is None or item.get("subscription") == subscription)
            and (ask == "any" or item.get("ask") == ask)
        )
    return pred


def bare(name: str) -> str:
    return f"{name}@localhost"


def show_of(s) -> str | None:
    el = s.find(C + "show")
    return None if el is None else el.text


def rows(plat, account: str) -> dict[str, tuple]:
    """The auth service's roster rows of `account`: contact → (in_roster, sub_to, sub_from, ask_out, pending_in)."""
    found = plat.sql(
        "SELECT contact, in_roster, sub_to, sub_from, ask_out, pending_in FROM roster WHERE account = %s",
        (account,),
    )
    return {r[0]: tuple(r[1:]) for r in found}


def test_subscription_handshake_pushes_and_presence(platform, agents, uniq):
    alice, apw = create_account(platform, uniq, "ra")
    bob, bpw = create_account(platform, uniq, "rb")
    a1 = agents(platform, alice, apw, gw=0, resource="phone")
    a2 = agents(platform, alice, apw, gw=1, resource="laptop")
    b1 = agents(platform, bob, bpw, gw=1, resource="desk")

    empty = roster_get(a1)
    assert empty.get("type") == "result" and items(empty) == {}, empty
    ver0 = empty.find(ROSTER + "query").get("ver")
    assert ver0 is not None, empty
    roster_get(a2)
    roster_get(b1)
    for a in (a1, a2, b1):
        a.send("<presence/>")
    # alice's two sessions see each other (an account's own resources share presence).
    a1.expect(is_presence(f"{bare(alice)}/laptop"), what="the other resource's presence")
    a2.expect(is_presence(f"{bare(alice)}/phone"), what="the other resource's presence")

    # Add bob with a name and a group: both of alice's sessions get the push.
    ans = iq(a1, "set", f"<query xmlns='jabber:iq:roster'><item jid='{bare(bob)}' name='Bobby'>"
                        "<group>Friends</group></item></query>")
    assert ans.get("type") == "result", ans
    for a in (a1, a2):
        push = a.expect(is_push(bare(bob), "none"), what="the roster push of the set")
        item = push.find(f"{ROSTER}query/{ROSTER}item")
        assert item.get("name") == "Bobby" and [g.text for g in item.iter(ROSTER + "group")] == ["Friends"]
        assert push.find(ROSTER + "query").get("ver") != ver0

    # alice asks for bob's presence: ask=subscribe for her, the request for him.
    a1.send(f"<presence to='{bare(bob)}' type='subscribe'/>")
    for a in (a1, a2):
        a.expect(is_push(bare(bob), "none", "subscribe"), what="ask=subscribe push")
    req = b1.expect(lambda s: s.tag == C + "presence" and s.get("type") == "subscribe", what="the request")
    assert req.get("from") == bare(alice), req
    assert rows(platform, bob)[alice] == (False, False, False, False, True)

    # bob approves: alice gets `to`, bob `from`, and bob's presence reaches
    # both of alice's sessions at once.
    b1.send("<presence><show>dnd</show><status>busy</status></presence>")
    b1.send(f"<presence to='{bare(alice)}' type='subscribed'/>")
    b1.expect(is_push(bare(alice), "from"), what="bob's push")
    for a in (a1, a2):
        a.expect(is_push(bare(bob), "to", None), what="subscription=to push")
        a.expect(lambda s: s.tag == C + "presence" and s.get("type") == "subscribed"
                 and s.get("from") == bare(bob), what="subscribed")
        p = a.expect(is_presence(f"{bare(bob)}/desk"), what="bob's presence")
        assert show_of(p) == "dnd", p
    assert rows(platform, alice)[bob] == (True, True, False, False, False)
    assert rows(platform, bob)[alice] == (True, False, True, False, False)

    # Presence changes go to the subscriber; alice's do not go to bob (he has `from` only).
    b1.send("<presence/>")
    p = a1.expect(is_presence(f"{bare(bob)}/desk"), what="bob available again")
    assert show_of(p) is None
    a1.send("<presence><show>away</show></presence>")
    b1.expect_none(lambda s: s.tag == C + "presence" and (s.get("from") or "").startswith(bare(alice) + "/"),
                   within=1.5)

    # A new session with the current version gets no roster at all (RFC 6121 §2.6.3).
    latest = [s for s in a1.all(is_push(bare(bob))) if s.find(ROSTER + "query") is not None][-1]
    current = latest.find(ROSTER + "query").get("ver")
    a3 = agents(platform, alice, apw, gw=0, resource="tablet")
    same = roster_get(a3, ver=current)
    assert same.get("type") == "result" and same.find(ROSTER + "query") is None, same
    full = roster_get(a3, ver="0")
    item = items(full)[bare(bob)]
    assert item.get("subscription") == "to" and item.get("name") == "Bobby", full

    # bob goes: alice hears he is unavailable.
    b1.close()
    for a in (a1, a2):
        a.expect(is_presence(f"{bare(bob)}/desk", "unavailable"), what="bob's unavailable")


def test_probes_answer_with_contacts_presence(platform, agents, uniq):
    alice, apw = create_account(platform, uniq, "pa")
    bob, bpw = create_account(platform, uniq, "pb")
    a1 = agents(platform, alice, apw)
    b1 = agents(platform, bob, bpw, gw=1, resource="home")
    # Mutual subscription.
    roster_get(a1)
    roster_get(b1)
    a1.send(f"<presence to='{bare(bob)}' type='subscribe'/>")
    b1.expect(lambda s: s.tag == C + "presence" and s.get("type") == "subscribe", what="request")
    b1.send(f"<presence to='{bare(alice)}' type='subscribed'/>")
    b1.send(f"<presence to='{bare(alice)}' type='subscribe'/>")
    a1.expect(lambda s: s.tag == C + "presence" and s.get("type") == "subscribe", what="request back")
    a1.send(f"<presence to='{bare(bob)}' type='subscribed'/>")
    a1.expect(is_push(bare(bob), "both"), what="both")
    b1.expect(is_push(bare(alice), "both"), what="both")
    # bob is online and available (xa) before alice's new session starts.
    b1.send("<presence><show>xa</show></presence>")
    a1.close()
    a2 = agents(platform, alice, apw, gw=0, resource="second")
    a2.send("<presence/>")
    p = a2.expect(is_presence(f"{bare(bob)}/home"), what="the probe's answer")
    assert show_of(p) == "xa", p
    # ...and bob hears alice's new session.
    b1.expect(is_presence(f"{bare(alice)}/second"), what="alice's presence")


def test_requests_wait_for_an_offline_account_and_can_be_refused(platform, agents, uniq):
    alice, apw = create_account(platform, uniq, "oa")
    carol, cpw = create_account(platform, uniq, "oc")
    a1 = agents(platform, alice, apw)
    roster_get(a1)
    a1.send(f"<presence to='{bare(carol)}' type='subscribe'/>")
    a1.expect(is_push(bare(carol), "none", "subscribe"), what="ask")

    # carol was offline: the request is shown when she becomes available.
    c1 = agents(platform, carol, cpw, gw=1)
    c1.send("<presence/>")
    req = c1.expect(lambda s: s.tag == C + "presence" and s.get("type") == "subscribe", what="stored request")
    assert req.get("from") == bare(alice), req
    # She refuses: alice's item drops the ask, and she is told.
    c1.send(f"<presence to='{bare(alice)}' type='unsubscribed'/>")
    a1.expect(is_push(bare(carol), "none", None), what="ask cleared")
    a1.expect(lambda s: s.tag == C + "presence" and s.get("type") == "unsubscribed"
              and s.get("from") == bare(carol), what="refusal")
    assert rows(platform, carol).get(alice) is None
    assert rows(platform, alice)[carol] == (True, False, False, False, False)

    # Removing the contact pushes subscription=remove and deletes the row.
    ans = iq(a1, "set", f"<query xmlns='jabber:iq:roster'><item jid='{bare(carol)}' subscription='remove'/></query>")
    assert ans.get("type") == "result", ans
    a1.expect(is_push(bare(carol), "remove"), what="remove push")
    assert rows(platform, alice) == {}

    # A request to a name that is no account is answered as refused.
    ghost = uniq("ghost")
    a1.send(f"<presence to='{bare(ghost)}' type='subscribe'/>")
    a1.expect(lambda s: s.tag == C + "presence" and s.get("type") == "unsubscribed"
              and s.get("from") == bare(ghost), what="refusal for a non-account")


@pytest.mark.parametrize(
    "query,condition",
    [
        ("<query xmlns='jabber:iq:roster'><item jid='{a}'/><item jid='{b}'/></query>", "bad-request"),
        ("<query xmlns='jabber:iq:roster'><item jid='someone@elsewhere.example'/></query>", "remote-server-not-found"),
        ("<query xmlns='jabber:iq:roster'><item jid='{b}'><group></group></item></query>", "not-acceptable"),
        ("<query xmlns='jabber:iq:roster'><item jid='nosuch{x}@localhost'/></query>", "item-not-found"),
        ("<query xmlns='jabber:iq:roster'><item jid='{b}/res'/></query>", "bad-request"),
        ("<query xmlns='jabber:iq:roster'><item jid='{b}' name='" + "n" * 300 + "'/></query>", "not-acceptable"),
    ],
    ids=["two-items", "other-domain", "empty-group", "no-account", "full-jid", "long-name"],
)
def test_roster_set_errors(platform, agents, uniq, query, condition):
    alice, apw = create_account(platform, uniq, "ea")
    bob, _ = create_account(platform, uniq, "eb")
    a1 = agents(platform, alice, apw)
    ans = iq(a1, "set", query.format(a=bare(alice), b=bare(bob), x=secrets.token_hex(3)))
    assert ans.get("type") == "error" and ans.error() == condition, ans
    # The stream goes on.
    assert roster_get(a1).get("type") == "result"


def test_carbons_copy_to_the_accounts_other_sessions(platform, agents, uniq):
    alice, apw = create_account(platform, uniq, "ca")
    bob, bpw = create_account(platform, uniq, "cb")
    a1 = agents(platform, alice, apw, gw=0, resource="one")
    a2 = agents(platform, alice, apw, gw=1, resource="two")
    a3 = agents(platform, alice, apw, gw=1, resource="three")  # carbons not enabled
    b1 = agents(platform, bob, bpw, gw=0)
    for a in (a1, a2):
        assert iq(a, "set", "<enable xmlns='urn:xmpp:carbons:2'/>").get("type") == "result"

    a1.send(f"<message to='{bare(bob)}' type='chat' id='m1'><body>hello bob</body></message>")
    b1.expect(is_message(body="hello bob"), what="the message")
    sent = a2.expect(lambda s: s.tag == C + "message" and s.find(CARBONS + "sent") is not None, what="sent carbon")
    assert sent.get("from") == bare(alice) and sent.get("to") == f"{bare(alice)}/two", sent
    inner = sent.find(f"{CARBONS}sent/{FORWARD}forwarded/{C}message")
    assert inner is not None and inner.get("to") == bare(bob) and inner.find(C + "body").text == "hello bob", sent
    assert inner.get("from") == f"{bare(alice)}/one", sent
    a1.expect_none(lambda s: s.find(CARBONS + "sent") is not None, within=0.5)

    # bob answers alice's bare JID: the session holding her nick gets it,
    # the other one with carbons a <received/> copy.
    b1.send(f"<message to='{bare(alice)}' type='chat' id='r1'><body>hi alice</body></message>")
    a1.expect(is_message(body="hi alice"), what="the reply")
    rec = a2.expect(lambda s: s.tag == C + "message" and s.find(CARBONS + "received") is not None,
                    what="received carbon")
    inner = rec.find(f"{CARBONS}received/{FORWARD}forwarded/{C}message")
    assert inner is not None and inner.find(C + "body").text == "hi alice", rec

    # Private messages are not copied; a session without carbons never gets copies.
    a1.send(f"<message to='{bare(bob)}' type='chat' id='m2'><body>secret</body>"
            "<private xmlns='urn:xmpp:carbons:2'/></message>")
    b1.expect(is_message(body="secret"), what="the private message")
    a2.expect_none(lambda s: s.find(CARBONS + "sent") is not None, within=1.0)
    a3.expect_none(lambda s: s.find(CARBONS + "sent") is not None or s.find(CARBONS + "received") is not None,
                   within=0.2)
    # disable stops them
    assert iq(a2, "set", "<disable xmlns='urn:xmpp:carbons:2'/>").get("type") == "result"
    a1.send(f"<message to='{bare(bob)}' type='chat' id='m3'><body>after</body></message>")
    b1.expect(is_message(body="after"), what="after disable")
    a2.expect_none(lambda s: s.find(CARBONS + "sent") is not None, within=1.0)


def test_vcards_are_stored_and_readable_by_others(platform, agents, uniq):
    alice, apw = create_account(platform, uniq, "va")
    bob, bpw = create_account(platform, uniq, "vb")
    a1 = agents(platform, alice, apw)
    b1 = agents(platform, bob, bpw, gw=1)
    empty = iq(a1, "get", "<vCard xmlns='vcard-temp'/>")
    assert empty.get("type") == "result" and empty.find(VCARD + "vCard") is not None, empty
    card = "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>al &amp; co</NICKNAME></vCard>"
    assert iq(a1, "set", card).get("type") == "result"
    mine = iq(a1, "get", "<vCard xmlns='vcard-temp'/>")
    assert mine.find(f"{VCARD}vCard/{VCARD}FN").text == "Alice Liddell", mine
    theirs = iq(b1, "get", "<vCard xmlns='vcard-temp'/>", to=bare(alice))
    assert theirs.get("from") == bare(alice), theirs
    assert theirs.find(f"{VCARD}vCard/{VCARD}NICKNAME").text == "al & co", theirs
    # Only the owner sets it; unknown accounts have none.
    assert iq(b1, "set", card, to=bare(alice)).error() == "forbidden"
    assert iq(b1, "get", "<vCard xmlns='vcard-temp'/>", to=f"nosuch{secrets.token_hex(3)}@localhost").error() \
        == "item-not-found"
    # Over the stored size limit (32 KiB; the stanza limit is 64 KiB).
    big = "<vCard xmlns='vcard-temp'><DESC>" + "x" * 40000 + "</DESC></vCard>"
    assert iq(a1, "set", big).error() == "not-acceptable"
    assert iq(a1, "get", "<vCard xmlns='vcard-temp'/>").find(f"{VCARD}vCard/{VCARD}FN").text == "Alice Liddell"
    # Rooms and occupants have none.
    assert iq(a1, "get", "<vCard xmlns='vcard-temp'/>", to="room@conference.localhost").error() \
        == "service-unavailable"


async def _recv(ws, timeout: float = 10) -> str:
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str)
    return msg


async def _open(ws) -> str:
    await ws.send(f'<open xmlns="{FRAMING}" to="localhost" version="1.0"/>')
    await _recv(ws)
    return await _recv(ws)


def test_in_band_registration_creates_a_usable_account(platform, uniq):
    name, pw = uniq("ib"), "pw-" + secrets.token_urlsafe(10)

    async def register(ws, username: str, password: str, ident: str) -> str:
        await ws.send(f"<iq xmlns='jabber:client' type='set' id='{ident}'><query xmlns='jabber:iq:register'>"
                      f"<username>{username}</username><password>{password}</password></query></iq>")
        return await _recv(ws)

    async def go():
        async with websockets.connect(ws_url(platform), subprotocols=["xmpp"], open_timeout=10) as ws:
            features = await _open(ws)
            assert "http://jabber.org/features/iq-register" in features, features
            await ws.send("<iq xmlns='jabber:client' type='get' id='f1'><query xmlns='jabber:iq:register'/></iq>")
            form = await _recv(ws)
            assert 'type="result"' in form and "<username/>" in form and "<password/>" in form, form
            ok = await register(ws, name, pw, "r1")
            assert 'type="result"' in ok and 'id="r1"' in ok, ok
            again = await register(ws, name, pw, "r2")
            assert 'type="error"' in again and "<conflict" in again, again
            bad = await register(ws, "9 bad name", pw, "r3")
            assert 'type="error"' in bad and "<jid-malformed" in bad, bad
            weak = await register(ws, uniq("ic"), "x", "r4")
            assert 'type="error"' in weak and "<not-acceptable" in weak, weak
            # Any other stanza before authentication still ends the stream.
            plain = base64.b64encode(f"\0{name}\0{pw}".encode()).decode()
            await ws.send(f'<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">{plain}</auth>')
            success = await _recv(ws)
            assert success.startswith("<success"), success
            features = await _open(ws)
            assert "<bind" in features and "urn:xmpp:features:rosterver" in features, features

    asyncio.run(go())
    # ...and a real client logs in with it.
    agent = XmppAgent(ws_url(platform, 1), name, pw)
    try:
        assert agent.jid.startswith(f"{name}@localhost/")
    finally:
        agent.close()


def test_a_ghosted_xmpp_session_ends_with_conflict(platform, clients, agents, uniq):
    """NickServ GHOST from IRC (the same account) ends the XMPP stream with
    the `conflict` stream error: the session was replaced (RFC 6120 §4.9.3.3)."""
    from harness.accounts import LOGIN_TIMEOUT, nickserv, sasl_connect

    name, pw = create_account(platform, uniq, "gx")
    xmpp = agents(platform, name, pw, gw=1)
    irc = clients.connect(0, platform)
    result, _ = sasl_connect(irc, uniq("gxi"), name, pw)
    assert result == "903", result
    nickserv(irc, f"GHOST {name}")
    ended = xmpp._wait_event(lambda e: e["event"] in ("error", "exit", "offline"), LOGIN_TIMEOUT)
    assert ended and ended["event"] == "error" and ended.get("condition") == "conflict", ended
