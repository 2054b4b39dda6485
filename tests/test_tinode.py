"""Tinode (issue 6): tinode-sdk clients over WebSocket and long polling in
the same rooms, with the same accounts and history, as IRC and XMPP users.

The Tinode side is `tinode-sdk` in Node (tests/js/tinode-agent.mjs through
harness.tinodeagent), which checks the protocol as a real client does (ids,
`params.seq`, timestamps, topic names); the raw packets it received are
checked too. Raw frames (Python `websockets`, `urllib` for long polling)
cover the errors: API key, probe, malformed JSON, unknown messages,
sequence, authentication, oversized frames.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.error
import urllib.request

import pytest
import websockets

from harness.accounts import sasl_connect
from harness.raw import by, esc
from harness.tinodeagent import TinodeError, is_ctrl, is_data, is_info, is_pres
from harness.xmppagent import C, SID, create_account

KEY = "AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K"
CAPS = ("echo-message", "message-tags", "server-time")
MUC = "conference.localhost"


def pw_for(name: str) -> str:
    return "pw-" + name[::-1] + "-9"


def new_user(tinodes, platform, uniq, base: str, transport: str = "ws", gw: int = 0):
    agent = tinodes(platform, gw=gw, transport=transport)
    login = uniq(base)
    res = agent.call("create", login=login, password=pw_for(login), fn=base.title())
    assert res["user"] == "usr" + login, res
    return agent, login


def test_accounts_basic_and_token_logins(platform, tinodes, uniq):
    alice, login = new_user(tinodes, platform, uniq, "ta")
    ctrl = alice.expect(is_ctrl(200), what="acc answer")
    assert ctrl["ctrl"]["params"]["authlvl"] == "auth"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ctrl["ctrl"]["params"]["expires"]), ctrl
    tok = alice.call("token")
    assert tok["token"]

    # A second client logs in with the token, a third with the password.
    second = tinodes(platform, gw=1)
    assert second.call("loginToken", token=tok["token"])["user"] == "usr" + login
    third = tinodes(platform)
    assert third.call("login", login=login.upper(), password=pw_for(login))["user"] == "usr" + login

    # The same account is the IRC and XMPP account: wrong passwords fail,
    # a taken login is a duplicate credential, a login twice is refused.
    bad = tinodes(platform)
    with pytest.raises(TinodeError) as e:
        bad.call("login", login=login, password="wrong-password")
    assert e.value.code == 401
    # The failed login left the session usable.
    assert bad.call("login", login=login, password=pw_for(login))["user"] == "usr" + login
    with pytest.raises(TinodeError) as e:
        bad.call("login", login=login, password=pw_for(login))
    assert e.value.code == 409
    dup = tinodes(platform)
    with pytest.raises(TinodeError) as e:
        dup.call("create", login=login, password="another-password")
    assert e.value.code == 409
    with pytest.raises(TinodeError) as e:
        dup.call("loginToken", token=tok["token"] + "x")
    assert e.value.code == 401


def test_group_messages_history_typing_and_read(platform, tinodes, uniq):
    alice, a_login = new_user(tinodes, platform, uniq, "tg")
    bob, b_login = new_user(tinodes, platform, uniq, "th", gw=1)
    made = alice.call("newGroup", fn="Team")
    grp = made["topic"]
    assert grp.startswith("grp") and made["tmpname"].startswith("new"), made
    # Bob (on the other gateway) attaches by name; alice sees him come.
    assert bob.call("subscribe", topic=grp)["code"] == 200
    alice.expect(is_pres(grp, "on", "usr" + b_login), what="bob's pres on")
    subs = {s["user"] for s in bob.call("subs", topic=grp)}
    assert subs == {"usr" + a_login, "usr" + b_login}, subs

    # 30 messages, alternating; every one is accepted with the next seq,
    # and both see all of them with the same seq.
    seqs = []
    for n in range(30):
        who = alice if n % 2 == 0 else bob
        seqs.append(who.call("publish", topic=grp, text=f"m{n}")["seq"])
    assert seqs == list(range(seqs[0], seqs[0] + 30)), seqs
    for agent in (alice, bob):
        got = {}
        for n in range(30):
            p = agent.expect(lambda p: is_data(grp)(p) and p["data"]["content"] == f"m{n}", what=f"m{n}")
            got[n] = p["data"]["seq"]
        assert [got[n] for n in range(30)] == seqs
        assert all(p["data"]["from"] in ("usr" + a_login, "usr" + b_login) for p in agent.all(is_data(grp)))

    # Drafty content comes back as it was sent.
    drafty = {"txt": "bold move 🚀", "fmt": [{"at": 5, "len": 4, "tp": "ST"}]}
    seq = alice.call("publishDrafty", topic=grp, drafty=drafty)["seq"]
    p = bob.expect(is_data(grp, seq), what="drafty")
    assert p["data"]["content"] == drafty, p

    # A third client attaches with the newest 10 and pages back with
    # getMessagesPage: the same messages, by seq.
    carol, _ = new_user(tinodes, platform, uniq, "ti")
    carol.call("subscribe", topic=grp, data=10)
    first = carol.call("messages", topic=grp)
    assert [m["seq"] for m in first] == list(range(seq - 9, seq + 1)), first
    page = carol.call("page", topic=grp, limit=10)
    assert page["count"] == 10, page
    msgs = carol.call("messages", topic=grp)
    assert [m["seq"] for m in msgs] == list(range(seq - 19, seq + 1)), msgs
    assert msgs[0]["content"] == f"m{30 - 19 + 0}" or msgs[0]["seq"] == seq - 19
    carol.expect(lambda p: is_ctrl(208)(p) and p["ctrl"]["params"].get("what") == "data", what="208 delivered")

    # Typing and read notifications reach the others, not the sender.
    bob.call("keypress", topic=grp)
    alice.expect(is_info(grp, "kp", "usr" + b_login), what="kp")
    bob.expect_none(is_info(grp, "kp"), within=0.5)
    alice.call("read", topic=grp, seq=seq)
    info = bob.expect(is_info(grp, "read", "usr" + a_login), what="read")
    assert info["info"]["seq"] == seq

    # Leave: the others see the user go.
    assert carol.call("leave", topic=grp)["code"] == 200
    alice.expect(lambda p: is_pres(grp, "off")(p) and p["pres"]["src"] not in ("usr" + a_login, "usr" + b_login),
                 what="carol's pres off")


def test_tinode_irc_and_xmpp_in_one_room_in_one_order(platform, tinodes, clients, agents, uniq):
    tin, t_login = new_user(tinodes, platform, uniq, "tm")
    grp = tin.call("newGroup", fn="Mixed")["topic"]
    room = grp[3:]
    chan = "#" + room
    irc = clients.user(uniq("tn"), gw=1, caps=CAPS)
    irc.join(chan)
    name, pw = create_account(platform, uniq, "to")
    xmpp = agents(platform, name, pw, gw=0)
    xmpp.send(f"<presence to='{room}@{MUC}/{name}'><x xmlns='http://jabber.org/protocol/muc'>"
              "<history maxstanzas='0'/></x></presence>")
    xmpp.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")
    tin.expect(is_pres(grp, "on", "usr" + name), what="xmpp user's pres")

    texts = []
    for n in range(9):
        text = f"z{n}"
        texts.append(text)
        if n % 3 == 0:
            tin.call("publish", topic=grp, text=text)
        elif n % 3 == 1:
            irc.send(f"PRIVMSG {chan} :{text}")
        else:
            xmpp.send(f"<message to='{room}@{MUC}' type='groupchat'><body>{text}</body></message>")
        # Each waits for its own message to be out before the next sender,
        # so the order is the sending order.
        tin.expect(lambda p, t=text: is_data(grp)(p) and p["data"]["content"] == t, what=text)

    tin_order = [(p["data"]["content"], p["data"]["seq"]) for p in tin.all(is_data(grp))]
    assert [t for t, _ in tin_order] == texts
    seqs = [s for _, s in tin_order]
    assert seqs == list(range(seqs[0], seqs[0] + 9)), seqs
    lines = irc.collect(rf" PRIVMSG {esc(chan)} :z\d$", 9, timeout=15)
    irc_order = [(ln.text, ln.tags.get("msgid")) for ln in lines]
    assert [t for t, _ in irc_order] == texts
    # The last one is XMPP's own: wait for its reflection too.
    xmpp.expect(lambda s: s.tag == C + "message" and s.body() == texts[-1], what="z8 reflected")
    stanzas = [s for s in xmpp.all(lambda s: s.tag == C + "message" and s.get("type") == "groupchat"
                                   and s.find(C + "body") is not None)]
    xmpp_order = [(s.find(C + "body").text, s.find(SID + "stanza-id").get("id")) for s in stanzas]
    assert xmpp_order == irc_order, (xmpp_order, irc_order)
    # The IRC user logged in nowhere is a guest to Tinode.
    guest = [p for p in tin.all(is_data(grp)) if p["data"]["content"] == "z1"][0]
    assert guest["data"]["from"].startswith("usrG"), guest


def test_one_to_one_with_an_irc_user_both_ways(platform, tinodes, clients, uniq):
    tin, t_login = new_user(tinodes, platform, uniq, "tp")
    irc = clients.user(uniq("tq"), gw=1, caps=CAPS)
    # An IRC user without an account is a guest: usrG + its nick.
    peer = "usrG" + irc.nick
    assert tin.call("subscribe", topic=peer)["code"] == 200

    s1 = tin.call("publish", topic=peer, text="hello irc")["seq"]
    assert s1 == 1
    irc.expect(by(t_login) + rf"PRIVMSG {esc(irc.nick)} :hello irc$")
    irc.send(f"PRIVMSG {t_login} :hello tinode")
    p = tin.expect(is_data(peer, 2), what="the IRC user's answer")
    assert (p["data"]["content"], p["data"]["from"]) == ("hello tinode", peer), p
    # Drafty goes as its text to IRC.
    s3 = tin.call("publishDrafty", topic=peer, drafty={"txt": "bold move", "fmt": [{"at": 5, "len": 4, "tp": "ST"}]})["seq"]
    assert s3 == 3
    irc.expect(by(t_login) + rf"PRIVMSG {esc(irc.nick)} :bold move$")
    # Typing both ways: Tinode kp is an IRC +typing TAGMSG and back.
    tin.call("keypress", topic=peer)
    irc.expect(rf"^@\S*\+typing=active\S* :{esc(t_login)}!\S+ TAGMSG {esc(irc.nick)}$")
    irc.send(f"@+typing=active TAGMSG {t_login}")
    tin.expect(is_info(peer, "kp", peer), what="the IRC user typing")

    # Another session of the account pages the conversation by seq.
    other = tinodes(platform, gw=1)
    other.call("login", login=t_login, password=pw_for(t_login))
    assert other.call("subscribe", topic=peer, data=10)["code"] == 200
    msgs = other.call("messages", topic=peer)
    assert [(m["seq"], m["from"]) for m in msgs] == [(1, "usr" + t_login), (2, peer), (3, "usr" + t_login)], msgs
    assert msgs[2]["content"] == {"txt": "bold move", "fmt": [{"at": 5, "len": 4, "tp": "ST"}]}
    assert other.call("desc", topic=peer)["seq"] == 3


def test_one_to_one_between_tinode_users_and_to_an_absent_account(platform, tinodes, uniq):
    alice, a_login = new_user(tinodes, platform, uniq, "tu")
    bob, b_login = new_user(tinodes, platform, uniq, "tv", gw=1)
    # A conversation without messages has no history: 204, not an error.
    assert alice.call("subscribe", topic="usr" + b_login, data=10)["code"] == 200
    empty = alice.expect(lambda p: is_ctrl(204, topic="usr" + b_login)(p)
                         and p["ctrl"].get("params", {}).get("what") == "data", what="204 no data")
    assert not alice.all(is_ctrl(403, topic="usr" + b_login)), empty
    assert alice.call("leave", topic="usr" + b_login)["code"] == 200
    assert alice.call("subscribe", topic="usr" + b_login)["code"] == 200
    assert bob.call("subscribe", topic="usr" + a_login)["code"] == 200
    s1 = alice.call("publish", topic="usr" + b_login, text="hi bob")["seq"]
    p = bob.expect(is_data("usr" + a_login, s1), what="alice's message, named by alice")
    assert p["data"]["from"] == "usr" + a_login and p["data"]["content"] == "hi bob"
    s2 = bob.call("publish", topic="usr" + a_login, text="hi alice")["seq"]
    assert s2 == s1 + 1
    alice.expect(is_data("usr" + b_login, s2), what="bob's answer")
    # Unknown peers, and oneself.
    with pytest.raises(TinodeError) as e:
        alice.call("subscribe", topic="usrnobody" + a_login)
    assert e.value.code == 404
    with pytest.raises(TinodeError) as e:
        alice.call("subscribe", topic="usr" + a_login)
    assert e.value.code == 403

    # To an account nobody is using: kept, and there when it subscribes.
    bob.call("leave", topic="usr" + a_login)
    carol, c_login = new_user(tinodes, platform, uniq, "tw")
    carol.close()
    time.sleep(1.0)  # its session ends when its connection does
    assert alice.call("subscribe", topic="usr" + c_login)["code"] == 200
    assert alice.call("publish", topic="usr" + c_login, text="while you were out")["seq"] == 1
    again = tinodes(platform, gw=1)
    again.call("login", login=c_login, password=pw_for(c_login))
    again.call("subscribe", topic="usr" + a_login, data=10)
    assert [m["content"] for m in again.call("messages", topic="usr" + a_login)] == ["while you were out"]


def is_desc(topic: str):
    return lambda p: p.get("meta", {}).get("topic") == topic and "desc" in p["meta"]


def test_me_lists_subscriptions_and_markers_between_sessions(platform, tinodes, clients, uniq):
    alice, a_login = new_user(tinodes, platform, uniq, "tr")
    bob, b_login = new_user(tinodes, platform, uniq, "ts", gw=1)
    grp = alice.call("newGroup", fn="Marks")["topic"]
    assert bob.call("subscribe", topic=grp)["code"] == 200
    seqs = [alice.call("publish", topic=grp, text=f"n{n}")["seq"] for n in range(3)]
    for s in seqs:
        bob.expect(is_data(grp, s), what=f"message {s}")
    bob.call("read", topic=grp, seq=seqs[1])
    alice.expect(is_info(grp, "read", "usr" + b_login), what="bob's read")
    # A marker lower than the stored one is not news: dropped.
    bob.call("read", topic=grp, seq=seqs[0])
    alice.expect_none(lambda p: is_info(grp, "read", "usr" + b_login)(p) and p["info"]["seq"] == seqs[0])
    # Bob writes to alice; she reads it in the one-to-one topic.
    assert bob.call("subscribe", topic="usr" + a_login)["code"] == 200
    p1 = bob.call("publish", topic="usr" + a_login, text="psst")["seq"]
    assert alice.call("subscribe", topic="usr" + b_login, data=5)["code"] == 200
    alice.call("read", topic="usr" + b_login, seq=p1)
    bob.expect(is_info("usr" + a_login, "read", "usr" + a_login), what="alice's read, to the peer")

    # Bob detaches (still subscribed) and goes; a new session of his sees
    # the group, unattached, and the conversation, with their markers.
    assert bob.call("leave", topic=grp)["code"] == 200
    bob.close()
    again = tinodes(platform)
    again.call("login", login=b_login, password=pw_for(b_login))
    subs = {s["topic"]: s for s in again.call("me")}
    assert subs[grp]["seq"] == seqs[-1] and subs[grp]["read"] == seqs[1], subs
    assert subs[grp]["recv"] >= seqs[1] and subs[grp]["fn"].startswith("#"), subs
    assert subs["usr" + a_login]["seq"] == p1 and subs["usr" + a_login]["fn"] == a_login, subs
    a_subs = {s["topic"]: s for s in alice.call("me")}
    assert a_subs["usr" + b_login]["read"] == p1 and a_subs[grp]["seq"] == seqs[-1], a_subs
    # Attaching again: the topic's desc carries the stored markers.
    assert again.call("subscribe", topic=grp)["code"] == 200
    desc = again.expect(is_desc(grp), what="the group's desc")["meta"]["desc"]
    assert desc["read"] == seqs[1] and desc["seq"] == seqs[-1], desc
    # Unsubscribing drops it from the list; a one-to-one topic can be deleted.
    assert again.call("leaveUnsub", topic=grp)["code"] == 200
    assert grp not in {s["topic"] for s in again.call("me")}
    assert again.call("subscribe", topic="usr" + a_login)["code"] == 200
    assert again.call("delTopic", topic="usr" + a_login)["code"] == 200

    # Alice's me follows her contacts: bob is online, then goes, then
    # comes back (on IRC this time: an account is online on any protocol).
    assert a_subs["usr" + b_login]["online"] is True, a_subs
    again.close()
    alice.expect(is_pres("me", "off", "usr" + b_login), what="bob offline")
    irc = clients.connect(1)
    result, _ = sasl_connect(irc, b_login, b_login, pw_for(b_login))
    assert result == "903", result
    alice.expect(is_pres("me", "on", "usr" + b_login), what="bob online on IRC")


def test_fnd_the_topic_note_and_evicting(platform, tinodes, clients, uniq):
    alice, a_login = new_user(tinodes, platform, uniq, "tf")
    bob, b_login = new_user(tinodes, platform, uniq, "tk", gw=1)
    grp = alice.call("newGroup", fn="Found")["topic"]
    room = "#" + grp[3:]
    # fnd finds accounts by name or basic: tag and rooms by name.
    found = bob.call("find", query=a_login.upper())
    assert [(r["user"], r["fn"]) for r in found["raw"]] == [("usr" + a_login, a_login)], found
    found = bob.call("find", query=f"basic:{a_login}, {room}")
    assert {r["user"] or r["topic"] for r in found["raw"]} == {"usr" + a_login, grp}, found
    assert set(found["contacts"]) == {"usr" + a_login, grp}, found
    assert bob.call("find", query="nobody" + a_login + " tel:123")["raw"] == []

    # A group's note is the room's topic; IRC sees it set.
    irc = clients.user(uniq("tj"), caps=CAPS)
    irc.join(room)
    assert bob.call("subscribe", topic=grp)["code"] == 200
    assert alice.call("setNote", topic=grp, note="release at noon")["code"] == 200
    irc.expect(rf"TOPIC {esc(room)} :release at noon$")
    # Only an operator (the creator) evicts; eviction is a KICK.
    with pytest.raises(TinodeError) as e:
        bob.call("setNote", topic=grp, note="mine now")
    assert e.value.code == 403
    with pytest.raises(TinodeError) as e:
        bob.call("evict", topic=grp, user="usr" + a_login)
    assert e.value.code == 403
    assert alice.call("evict", topic=grp, user="usr" + b_login)["code"] == 200
    irc.expect(rf"KICK {esc(room)} {esc(b_login)}")
    bob.expect(is_ctrl(205, topic=grp), what="bob evicted")
    # A room is shared with IRC and XMPP: nobody deletes it.
    with pytest.raises(TinodeError) as e:
        alice.call("delTopic", topic=grp)
    assert e.value.code == 403


def test_deleting_messages_for_everyone_and_for_oneself(platform, tinodes, clients, uniq):
    alice, a_login = new_user(tinodes, platform, uniq, "tx")
    bob, b_login = new_user(tinodes, platform, uniq, "ty", gw=1)
    grp = alice.call("newGroup", fn="Deletes")["topic"]
    room = "#" + grp[3:]
    assert bob.call("subscribe", topic=grp)["code"] == 200
    irc = clients.user(uniq("tz"), caps=CAPS + ("draft/message-redaction",))
    irc.join(room)
    seqs = [alice.call("publish", topic=grp, text=f"d{n}")["seq"] for n in range(3)]
    lines = irc.collect(rf" PRIVMSG {esc(room)} :d\d$", 3, timeout=10)
    msgids = [ln.tags["msgid"] for ln in lines]
    b_seq = bob.call("publish", topic=grp, text="bob's own")["seq"]
    for s in seqs + [b_seq]:
        bob.expect(is_data(grp, s), what=f"message {s}")

    # Bob is no operator: alice's message is not his to delete; his own is.
    with pytest.raises(TinodeError) as e:
        bob.call("delMsgs", topic=grp, seqs=[seqs[0]], hard=True)
    assert e.value.code == 403
    res = bob.call("delMsgs", topic=grp, seqs=[b_seq], hard=True)
    assert res["code"] == 200 and res["del"] > 0, res
    # Alice (the creator, an operator) deletes her second message: IRC
    # sees REDACT of its msgid, Tinode sessions a {pres del}.
    res2 = alice.call("delMsgs", topic=grp, seqs=[seqs[1]], hard=True)
    assert res2["code"] == 200 and res2["del"] > res["del"], (res, res2)
    irc.expect(rf"REDACT {esc(room)} {msgids[1]}$")
    p = bob.expect(lambda p: is_pres(grp, "del")(p) and p["pres"]["delseq"] == [{"low": seqs[1]}], what="pres del")
    assert p["pres"]["clear"] == res2["del"], p
    # Gone from history for everyone.
    carol, _ = new_user(tinodes, platform, uniq, "tz")
    carol.call("subscribe", topic=grp, data=10)
    assert [m["seq"] for m in carol.call("messages", topic=grp)] == [seqs[0], seqs[2]]

    # Soft: gone for bob only, in every later session of his.
    res3 = bob.call("delMsgs", topic=grp, seqs=[seqs[0]], hard=False)
    assert res3["code"] == 200, res3
    irc.expect_none(rf"REDACT {esc(room)} {msgids[0]}", within=0.5)
    bob.call("leave", topic=grp)
    again = tinodes(platform)
    again.call("login", login=b_login, password=pw_for(b_login))
    again.call("subscribe", topic=grp, data=10)
    assert [m["seq"] for m in again.call("messages", topic=grp)] == [seqs[2]]
    assert [m["seq"] for m in alice.call("messages", topic=grp) if m["seq"] in seqs] == [seqs[0], seqs[2]]


def test_long_polling_carries_the_same_session(platform, tinodes, uniq):
    lp, lp_login = new_user(tinodes, platform, uniq, "tl", transport="lp")
    ws, ws_login = new_user(tinodes, platform, uniq, "tw")
    grp = ws.call("newGroup", fn="LP")["topic"]
    assert lp.call("subscribe", topic=grp)["code"] == 200
    ws.expect(is_pres(grp, "on", "usr" + lp_login), what="lp user's pres")
    s1 = lp.call("publish", topic=grp, text="over long polling")["seq"]
    p = ws.expect(is_data(grp, s1), what="lp message")
    assert p["data"]["from"] == "usr" + lp_login
    s2 = ws.call("publish", topic=grp, text="over websocket")["seq"]
    assert s2 == s1 + 1
    lp.expect(is_data(grp, s2), what="ws message over lp")
    lp.call("keypress", topic=grp)
    ws.expect(is_info(grp, "kp", "usr" + lp_login), what="kp over lp")
    # Leaving explicitly (the SDK cannot disconnect long polling cleanly).
    assert lp.call("leave", topic=grp)["code"] == 200
    ws.expect(is_pres(grp, "off", "usr" + lp_login), what="lp user's pres off")


# ---------------------------------------------------------------------------
# Raw frames
# ---------------------------------------------------------------------------


def ws_url(plat, gw: int = 0, key: str | None = KEY) -> str:
    url = f"ws://127.0.0.1:{plat.gateway(gw).http_port}/v0/channels"
    return url + (f"?apikey={key}" if key else "")


async def frame(ws, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def ctrl_of(ws, timeout: float = 10) -> dict:
    while True:
        msg = await frame(ws, timeout)
        if "ctrl" in msg:
            return msg["ctrl"]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_raw_frames_get_the_documented_codes(platform, uniq):
    login = uniq("tr")

    async def run():
        # No API key: 403 before the upgrade.
        with pytest.raises(websockets.InvalidStatus) as e:
            await websockets.connect(ws_url(platform, key=None), open_timeout=10)
        assert e.value.response.status_code == 403
        assert json.loads(e.value.response.body)["ctrl"]["text"] == "valid API key required"
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(ws_url(platform, key="wrong"), open_timeout=10)

        bystander = await websockets.connect(ws_url(platform), open_timeout=10)
        await bystander.send(json.dumps({"hi": {"id": "b1", "ver": "0.25"}}))
        assert (await ctrl_of(bystander))["code"] == 201

        async with websockets.connect(ws_url(platform), max_size=None, open_timeout=10) as ws:
            await ws.send("1")
            assert await asyncio.wait_for(ws.recv(), 10) == "0", "network probe"
            await ws.send("{not json")
            c = await ctrl_of(ws)
            assert (c["code"], c["text"]) == (400, "malformed") and "id" not in c
            await ws.send(json.dumps({"what": {"id": "x"}}))
            assert (await ctrl_of(ws))["code"] == 400
            await ws.send(json.dumps({"sub": {"id": "s0", "topic": "me"}}))
            c = await ctrl_of(ws)
            assert (c["code"], c.get("id")) == (409, "s0"), c
            await ws.send(json.dumps({"hi": {"id": "h1", "ver": "0.15.8-rc2"}}))
            assert (await ctrl_of(ws))["code"] == 505
            await ws.send(json.dumps({"hi": {"id": "h2", "ver": "0.25.3", "ua": "raw"}}))
            c = await ctrl_of(ws)
            assert (c["code"], c["id"]) == (201, "h2") and c["params"]["ver"] == "0.25", c
            assert c["params"]["maxMessageSize"] > 0
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", c["ts"]), c
            await ws.send(json.dumps({"sub": {"id": "s1", "topic": "me"}}))
            assert (await ctrl_of(ws))["code"] == 401
            await ws.send(json.dumps({"pub": {"id": "p1", "topic": "grpx", "content": "hi"}}))
            assert (await ctrl_of(ws))["code"] == 401
            await ws.send(json.dumps({"login": {"id": "l1", "scheme": "magic", "secret": "x"}}))
            c = await ctrl_of(ws)
            assert (c["code"], c["text"]) == (401, "unknown authentication scheme")
            await ws.send(json.dumps({"sub": {"id": 7, "topic": ["not", "a", "string"]}}))
            c = await ctrl_of(ws)
            assert (c["code"], c.get("id")) == (400, "7"), c
            secret = b64(f"{login}:{pw_for(login)}")
            await ws.send(json.dumps({"acc": {"id": "a1", "user": "new", "scheme": "basic", "secret": secret,
                                              "login": True, "desc": {"public": {"fn": "Raw"}}}}))
            c = await ctrl_of(ws)
            assert c["code"] == 200 and c["params"]["user"] == "usr" + login, c
            # Oversized: 413, and the session goes on.
            await ws.send(json.dumps({"pub": {"id": "big", "topic": "grpx", "content": "x" * (300 * 1024)}}))
            c = await ctrl_of(ws)
            assert c["code"] == 413, c
            await ws.send(json.dumps({"pub": {"id": "p2", "topic": "grpnotattached", "content": "hi"}}))
            c = await ctrl_of(ws)
            assert (c["code"], c["id"]) == (409, "p2"), c
            await ws.send(json.dumps({"sub": {"id": "s2", "topic": "grp" + uniq("nosuch")}}))
            assert (await ctrl_of(ws))["code"] == 404
            await ws.send(json.dumps({"sub": {"id": "s3", "topic": "usr" + login}}))
            assert (await ctrl_of(ws))["code"] == 403
            await ws.send(json.dumps({"pub": {"id": "p3", "topic": "me", "content": "hi"}}))
            assert (await ctrl_of(ws))["code"] == 403
            await ws.send(json.dumps({"leave": {"id": "l2", "topic": "grpneverjoined"}}))
            assert (await ctrl_of(ws))["code"] == 304
            # A note is never answered, even a bad one.
            await ws.send(json.dumps({"note": {"topic": "grpx", "what": "read", "seq": -1}}))
            await ws.send(json.dumps({"sub": {"id": "s4", "topic": "me", "get": {"what": "desc"}}}))
            c = await ctrl_of(ws)
            assert (c["code"], c["id"], c["topic"]) == (200, "s4", "me"), c
            m = await frame(ws)
            assert m["meta"]["id"] == "s4" and m["meta"]["desc"]["public"]["fn"] == login, m
            await ws.send(json.dumps({"sub": {"id": "s5", "topic": "me"}}))
            assert (await ctrl_of(ws))["code"] == 304
            # {set} and {del} of what the platform cannot change, or of
            # nonsense, and of topics not attached.
            for msg, want in (
                ({"set": {"id": "t1", "topic": "me", "desc": {"public": {"fn": "X"}}}}, 501),
                ({"set": {"id": "t2", "topic": "grpnotattached", "desc": {}}}, 409),
                ({"del": {"id": "t3", "topic": "grpnotattached", "what": "msg",
                          "delseq": [{"low": 1}], "hard": True}}, 409),
                ({"del": {"id": "t4", "topic": "me", "what": "cred"}}, 501),
                ({"del": {"id": "t5", "topic": "me", "what": "everything"}}, 400),
                ({"del": {"id": "t6", "topic": "me", "what": "topic"}}, 403),
            ):
                await ws.send(json.dumps(msg))
                c = await ctrl_of(ws)
                assert (c["code"], c["id"]) == (want, list(msg.values())[0]["id"]), (msg, c)

        # The bystander was untouched by all of it.
        await bystander.send(json.dumps({"login": {"id": "b2", "scheme": "basic",
                                                   "secret": b64(f"{login}:{pw_for(login)}")}}))
        c = await ctrl_of(bystander)
        assert (c["code"], c["id"]) == (200, "b2"), c
        await bystander.close()

    asyncio.run(run())


def lp_post(plat, query: str, body: bytes = b"", timeout: float = 60):
    url = f"http://127.0.0.1:{plat.gateway(0).http_port}/v0/channels/lp?{query}"
    req = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_long_polling_raw(platform):
    status, body = lp_post(platform, "")
    assert status == 403 and json.loads(body)["ctrl"]["code"] == 403
    status, body = lp_post(platform, f"apikey={KEY}&sid=nosuchsession")
    assert status == 403 and json.loads(body)["ctrl"]["text"] == "invalid or expired session"
    status, body = lp_post(platform, f"apikey={KEY}")
    assert status == 201, body
    sid = json.loads(body)["ctrl"]["params"]["sid"]
    q = f"apikey={KEY}&sid={sid}"
    status, body = lp_post(platform, q, json.dumps({"hi": {"id": "1", "ver": "0.25"}}).encode())
    assert (status, body) == (200, "")
    status, body = lp_post(platform, q)
    c = json.loads(body)["ctrl"]
    assert (status, c["code"], c["id"]) == (200, 200, "1"), body
    status, body = lp_post(platform, q, b"{broken")
    assert status == 200
    status, body = lp_post(platform, q)
    assert json.loads(body)["ctrl"]["code"] == 400


def test_a_long_poll_abandoned_mid_poll_still_ends_its_session(make_platform, uniq):
    """A client that vanishes while its poll is pending (the SDK's LP
    disconnect does that) is idle from then on: after lp_idle_secs its
    session ends, its sid is refused and its user goes offline."""
    plat = make_platform(gateways=1, env={"CHAT__TINODE__LP_IDLE_SECS": "2", "CHAT__TINODE__LP_POLL_SECS": "30"})
    login = uniq("tlp")
    assert plat.chatctl("account", "create", login, stdin=pw_for(login) + "\n").returncode == 0
    status, body = lp_post(plat, f"apikey={KEY}")
    sid = json.loads(body)["ctrl"]["params"]["sid"]
    q = f"apikey={KEY}&sid={sid}"
    lp_post(plat, q, json.dumps({"hi": {"id": "1", "ver": "0.25"}}).encode())
    lp_post(plat, q)  # the {hi} answer
    secret = b64(f"{login}:{pw_for(login)}")
    lp_post(plat, q, json.dumps({"login": {"id": "2", "scheme": "basic", "secret": secret}}).encode())
    c = json.loads(lp_post(plat, q)[1])["ctrl"]
    assert c["code"] == 200, c
    irc = plat.connect(0)
    irc.register(uniq("tw"))
    irc.send(f"ISON {login}")
    assert login in (irc.expect(irc.num("303")).text or "").split()
    # A poll the client gives up on after a second (nothing is queued).
    with pytest.raises((TimeoutError, urllib.error.URLError, OSError)):
        lp_post(plat, q, timeout=1)
    deadline = time.monotonic() + 20
    while True:
        irc.send(f"ISON {login}")
        if login not in (irc.expect(irc.num("303")).text or "").split():
            break
        assert time.monotonic() < deadline, "the abandoned long-polling session never ended"
        time.sleep(0.5)
    status, body = lp_post(plat, q)
    assert status == 403 and json.loads(body)["ctrl"]["text"] == "invalid or expired session"
    irc.close()
