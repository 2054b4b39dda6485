"""IRCv3 labeled-response: every labeled command gets exactly one labeled
answer — `ACK`, the single line, or a `labeled-response` batch — even when
the answer is assembled from the router (JOIN, MODE, PRIVMSG echoes), the
auth service (NickServ) or the history service (CHATHISTORY, the replay
after JOIN). Other traffic never lands inside, and never overtakes, a
response."""

from __future__ import annotations

import re
import time

from harness.accounts import nickserv
from harness.raw import RawClient, by, esc
from harness.xmppagent import create_account

CAPS = ("labeled-response", "batch")
LABEL = r"(?:^|[@;])label={}(?:;| )"


def response(c: RawClient, label: str, timeout: float = 10.0) -> list:
    """The whole labeled response to `label`: its lines in order (for a
    batch, BATCH start through BATCH end)."""
    first = c.expect(LABEL.format(re.escape(label)), timeout)
    if first.command != "BATCH":
        return [first]
    assert first.params[1] == "labeled-response", first.raw
    ref = first.params[0][1:]
    end = c.expect(rf"^(?::\S+ )?BATCH -{re.escape(ref)}$", timeout)
    inside = [ln for ln in c.pending() if first.n < ln.n < end.n]
    for ln in inside:
        c.expect(re.escape(ln.raw) + "$", 0)
    return [first, *inside, end]


def in_batch(lines: list) -> list:
    """The lines of a batch response that belong to it directly."""
    ref = lines[0].params[0][1:]
    return [ln for ln in lines[1:-1] if ln.tags.get("batch") == ref]


def history_texts(c: RawClient, chan: str, label: str) -> list[str]:
    """A labeled `CHATHISTORY LATEST`: the texts of its nested batch."""
    c.send(f"@label={label} CHATHISTORY LATEST {chan} * 10")
    lines = response(c, label)
    nested = [ln for ln in in_batch(lines) if ln.command == "BATCH"]
    assert [ln.params[1] for ln in nested[:1]] == ["chathistory"], [ln.raw for ln in lines]
    inner = nested[0].params[0][1:]
    return [ln.text for ln in lines if ln.tags.get("batch") == inner and ln.command == "PRIVMSG"]


def until_stored(c: RawClient, chan: str, texts: list[str], timeout: float = 15.0) -> None:
    """Asks (labeled) until the history service has stored `texts`."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        got = history_texts(c, chan, f"w{n}")
        if got[-len(texts):] == texts or time.monotonic() > deadline:
            assert got[-len(texts):] == texts, got
            return
        time.sleep(0.2)


def test_the_cap_is_offered(clients):
    assert "labeled-response" in clients.connect().cap_ls()


def test_one_line_answers_carry_the_label(clients, uniq):
    c = clients.user(uniq("lr"), caps=CAPS)
    c.send("@label=p1 PING :tok")
    (pong,) = response(c, "p1")
    assert pong.command == "PONG" and pong.text == "tok", pong.raw
    c.send("@label=u1 FROBNICATE")
    (unknown,) = response(c, "u1")
    assert unknown.command == "421", unknown.raw
    # Nothing to say: ACK.
    c.send("@label=n1 PONG :whatever")
    (ack,) = response(c, "n1")
    assert ack.command == "ACK", ack.raw


def test_messages_are_acked_or_echoed_with_the_label(clients, uniq):
    a, b, chan = uniq("lm"), uniq("ln"), "#" + uniq("lmsg")
    ca = clients.user(a, caps=CAPS)
    ce = clients.user(uniq("le"), caps=(*CAPS, "echo-message", "message-tags"))
    cb = clients.user(b, gw=1, caps=CAPS)
    for c in (ca, ce, cb):
        c.join(chan)
    # Without echo-message the router's acceptance is the answer: ACK.
    ca.send(f"@label=m1 PRIVMSG {chan} :first")
    (ack,) = response(ca, "m1")
    assert ack.command == "ACK", ack.raw
    seen = cb.expect(by(a) + rf"PRIVMSG {esc(chan)} :first$")
    assert "label" not in seen.tags, "the label is the sender's, nobody else's"
    # With echo-message the echo is the answer.
    ce.send(f"@label=m2 PRIVMSG {chan} :second")
    (echo,) = response(ce, "m2")
    assert echo.command == "PRIVMSG" and echo.text == "second" and "msgid" in echo.tags, echo.raw
    # A refusal by the router is the answer too.
    ca.send(f"@label=m3 PRIVMSG #{uniq('nowhere')} :x")
    (err,) = response(ca, "m3")
    assert err.command in ("401", "403"), err.raw
    # A private message (a direct delivery, confirmed by the broker).
    ce.send(f"@label=m4 PRIVMSG {b} :psst")
    (echo,) = response(ce, "m4")
    assert echo.command == "PRIVMSG" and echo.text == "psst", echo.raw
    got = cb.expect(rf"PRIVMSG {esc(b)} :psst$")
    assert "label" not in got.tags


def test_a_labeled_join_is_one_batch_with_its_replay_and_nothing_overtakes_it(make_platform, clients, uniq):
    plat = make_platform(gateways=2, env={"CHAT__IRC__JOIN_REPLAY_LINES": "5"})
    a, b, chan = uniq("lj"), uniq("lk"), "#" + uniq("ljoin")
    cb = clients.user(b, gw=1, caps=(*CAPS, "draft/chathistory"), plat=plat)
    cb.join(chan)
    cb.send(f"TOPIC {chan} :labeled topic")
    cb.expect(rf"TOPIC {esc(chan)} :labeled topic$")
    for i in range(3):
        cb.send(f"PRIVMSG {chan} :earlier {i}")
    until_stored(cb, chan, [f"earlier {i}" for i in range(3)])
    ca = clients.user(a, caps=(*CAPS, "server-time", "message-tags"), plat=plat)
    ca.send(f"@label=j1 JOIN {chan}")
    # Someone talks right after: that line must come after the response.
    cb.expect(by(a) + rf"JOIN :?{esc(chan)}$")
    cb.send(f"PRIVMSG {chan} :right after")
    lines = response(ca, "j1")
    assert lines[0].command == "BATCH", [ln.raw for ln in lines]
    own = [ln.command for ln in in_batch(lines)]
    assert own[0] == "JOIN", own
    assert "332" in own and "353" in own and "366" in own, own
    # The replay is a chathistory batch nested in the response.
    nested = [ln for ln in in_batch(lines) if ln.command == "BATCH" and ln.params[0].startswith("+")]
    assert nested and nested[0].params[1] == "chathistory", "\n".join(ln.raw for ln in lines)
    inner = nested[0].params[0][1:]
    replayed = [ln.text for ln in lines if ln.tags.get("batch") == inner and ln.command == "PRIVMSG"]
    assert replayed == [f"earlier {i}" for i in range(3)], replayed
    after = ca.expect(by(b) + rf"PRIVMSG {esc(chan)} :right after$")
    assert after.n > lines[-1].n, "a channel message overtook the JOIN's response"
    assert "label" not in after.tags and "batch" not in after.tags


def test_router_queries_and_errors_are_labeled(clients, uniq):
    a, b, chan = uniq("lq"), uniq("lr"), "#" + uniq("lquery")
    ca = clients.user(a, caps=CAPS)
    cb = clients.user(b, caps=CAPS)
    ca.join(chan)
    cb.join(chan)
    cb.send(f"@label=q1 MODE {chan} +m")
    (err,) = response(cb, "q1")
    assert err.command == "482", err.raw
    ca.send(f"@label=q2 MODE {chan}")
    lines = response(ca, "q2")
    assert [ln.command for ln in in_batch(lines)] == ["324", "329"], [ln.raw for ln in lines]
    ca.send(f"@label=q3 NAMES {chan}")
    lines = response(ca, "q3")
    assert [ln.command for ln in in_batch(lines)] == ["353", "366"], [ln.raw for ln in lines]
    # WHO via the router, WHOIS from the session records.
    ca.send(f"@label=q4 WHO {chan}")
    lines = response(ca, "q4")
    assert [ln.command for ln in in_batch(lines)] == ["352", "352", "315"], [ln.raw for ln in lines]
    ca.send(f"@label=q5 WHOIS {b}")
    lines = response(ca, "q5")
    cmds = [ln.command for ln in in_batch(lines)]
    assert cmds[0] == "311" and cmds[-1] == "318", cmds


def test_pipelined_labels_answer_in_order(clients, uniq):
    c = clients.user(uniq("lp"), caps=CAPS)
    chan = "#" + uniq("lpipe")
    c.send(f"@label=a JOIN {chan}\r\n@label=b PING :x\r\n@label=c PART {chan}\r\n@label=d TIME")
    order = []
    for label in "abcd":
        lines = response(c, label)
        order.append((lines[0].n, label))
    assert [label for _, label in sorted(order)] == list("abcd"), order


def test_nickserv_answers_from_the_auth_service_are_labeled(platform, clients, uniq):
    name, pw = create_account(platform, uniq, "lacct")
    c = clients.user(uniq("ls"), caps=CAPS)
    c.send(f"@label=i1 PRIVMSG NickServ :IDENTIFY {name} {pw}")
    lines = response(c, "i1", timeout=20)
    cmds = [ln.command for ln in (in_batch(lines) if lines[0].command == "BATCH" else lines)]
    assert "900" in cmds, [ln.raw for ln in lines]
    c.send("@label=i2 PRIVMSG NickServ :IDENTIFY nobody-here wrong")
    lines = response(c, "i2", timeout=20)
    assert any(ln.command == "NOTICE" for ln in lines), [ln.raw for ln in lines]


def test_chathistory_answer_is_labeled(clients, uniq):
    a, chan = uniq("lh"), "#" + uniq("lhist")
    c = clients.user(a, caps=(*CAPS, "draft/chathistory", "server-time", "message-tags"))
    c.join(chan)
    for i in range(2):
        c.send(f"PRIVMSG {chan} :h{i}")
    # Each answer is one labeled batch around the chathistory batch.
    until_stored(c, chan, ["h0", "h1"])
    assert history_texts(c, chan, "h-again") == ["h0", "h1"]


def test_labels_are_ignored_without_batch_or_when_too_long(clients, uniq):
    c = clients.user(uniq("lx"), caps=("labeled-response",))
    c.send("@label=z1 PING :a")
    pong = c.expect(r"PONG .*:?a$")
    assert "label" not in pong.tags, pong.raw
    d = clients.user(uniq("ly"), caps=CAPS)
    d.send(f"@label={'x' * 65} PING :b")
    pong = d.expect(r"PONG .*:?b$")
    assert "label" not in pong.tags, pong.raw


def test_commands_that_fan_out_to_every_room_answer_once(clients, uniq):
    c = clients.user(uniq("lf"), caps=CAPS)
    other = clients.user(uniq("lg"), caps=CAPS)
    chans = ["#" + uniq("lfa"), "#" + uniq("lfb")]
    for ch in chans:
        c.join(ch)
        other.join(ch)
    # AWAY: 306 and an intent per room.
    c.send("@label=a1 AWAY :lunch")
    (away,) = response(c, "a1")
    assert away.command == "306", away.raw
    # NICK: the NICK line, whatever the rooms do.
    new = uniq("lh")
    c.send(f"@label=n1 NICK {new}")
    lines = response(c, "n1")
    assert [ln.command for ln in lines] == ["NICK"], [ln.raw for ln in lines]
    c.nick = new
    other.expect(rf" NICK :?{re.escape(new)}$")
    other.expect_none(rf" NICK :?{re.escape(new)}$", within=0.5)
    # TOPIC (the router's event is the answer).
    c.send(f"@label=t1 TOPIC {chans[0]} :labeled")
    (topic,) = response(c, "t1")
    assert topic.command == "TOPIC" and topic.text == "labeled", topic.raw
    # A labeled QUIT still ends with the ERROR line.
    c.send("@label=q1 QUIT :bye")
    c.expect(r"^(?:@\S+ )?ERROR :Closing Link")
    c.expect_closed()
    other.expect(rf"QUIT :Quit: bye$")
