"""Room history over IRC (issue: history): `CHATHISTORY` (IRCv3
draft/chathistory) LATEST / BEFORE / AFTER / AROUND / BETWEEN by msgid and
by timestamp and at the edges, the ISUPPORT limit, draft/event-playback,
TARGETS, who may read a room, malformed commands, a history service that
does not answer, history surviving a restart of every process, and the
replay after JOIN for clients without draft/chathistory.

The history service stores what it consumes asynchronously, so a test
that needs something stored asks again (`fetch_until`) until it is there.
The helpers here are shared with test_direct_history.
"""

from __future__ import annotations

import calendar
import re
import time

import pytest

from harness.raw import RawClient, by, esc

HISTORY_CAPS = ("draft/chathistory", "batch", "server-time", "message-tags")
TIME_RX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BATCH_START = r"^(?:@\S+ )?:\S+ BATCH \+(\S+) (\S+)(?: (\S+))?$"
STORE_TIMEOUT = 15.0


class Batch:
    """One history answer: the batch's type and parameter and its lines."""

    def __init__(self, kind: str, param: str | None, lines: list):
        self.kind, self.param, self.lines = kind, param, lines

    @property
    def texts(self) -> list[str]:
        return [ln.text for ln in self.lines if ln.command in ("PRIVMSG", "NOTICE")]

    @property
    def msgids(self) -> list[str]:
        return [ln.tags.get("msgid", "") for ln in self.lines]

    def __repr__(self) -> str:
        shown = "\n    ".join(ln.raw for ln in self.lines)
        return f"<batch {self.kind} {self.param}: {len(self.lines)} lines\n    {shown}>"


def answer(c: RawClient, command: str, timeout: float = 12.0):
    """Sends `CHATHISTORY …` and returns the batch that answers it (the
    client must have `batch`) or the FAIL line."""
    c.send(command)
    start = c.expect(rf"{BATCH_START}|^(?:@\S+ )?(?::\S+ )?FAIL CHATHISTORY ", timeout)
    if start.command == "FAIL":
        return start
    ref = start.params[0][1:]
    end = c.expect(rf"^(?:@\S+ )?:\S+ BATCH -{re.escape(ref)}$", timeout)
    inside = c.collect(rf"^@(?:\S*;)?batch={re.escape(ref)}[; ]", 10**6, 0)
    lines = [ln for ln in inside if start.n < ln.n < end.n]
    return Batch(start.params[1], start.params[2] if len(start.params) > 2 else None, lines)


def fetch(c: RawClient, command: str, timeout: float = 12.0) -> Batch:
    """The batch answering `command`; a FAIL instead fails the test."""
    got = answer(c, command, timeout)
    assert isinstance(got, Batch), f"{command!r} answered with {got.raw!r}"
    return got


def fetch_until(c: RawClient, command: str, done, timeout: float = STORE_TIMEOUT) -> Batch:
    """Repeats `command` until `done(batch)` holds (the service has stored
    what the test sent), and returns that batch. Until then the answer may
    also be INVALID_TARGET: a direct conversation exists for the history
    service only once its first message is stored."""
    deadline = time.monotonic() + timeout
    while True:
        got = answer(c, command)
        if isinstance(got, Batch) and done(got):
            return got
        if not isinstance(got, Batch) and got.params[1] != "INVALID_TARGET":
            raise AssertionError(f"{command!r} answered with {got.raw!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{command!r} never satisfied the test within {timeout}s; last answer: {got!r}")
        time.sleep(0.2)


def fail_line(c: RawClient, code: str, timeout: float = 12.0):
    """The next `FAIL CHATHISTORY <code> …` line (consumed)."""
    return c.expect(rf"^(?:@\S+ )?(?::\S+ )?FAIL CHATHISTORY {code}(?: |$)", timeout)


def say(sender: RawClient, target: str, texts: list[str], watchers: list[RawClient]) -> list:
    """Sends each text to `target` and returns the lines the first watcher
    saw live (the others must see them too), in order."""
    for t in texts:
        sender.send(f"PRIVMSG {target} :{t}")
    seen = None
    for w in watchers:
        got = w.collect(by(sender.nick) + rf"PRIVMSG {esc(target)} :", len(texts), 15)
        assert [ln.text for ln in got] == texts, (
            f"{w.nick} saw {len(got)} of {len(texts)} messages live: {[ln.raw for ln in got[-3:]]}")
        seen = seen or got
    return seen


def room(clients, uniq, plat=None, viewer_caps=HISTORY_CAPS):
    """A fresh channel with a sender and a viewer (history caps) in it."""
    chan = "#" + uniq("hist")
    sender = clients.user(uniq("snd"), caps=("message-tags",), plat=plat)
    viewer = clients.user(uniq("vw"), gw=1, caps=viewer_caps, plat=plat)
    sender.join(chan)
    viewer.join(chan)
    sender.expect(by(viewer.nick) + rf"JOIN :?{esc(chan)}")
    return chan, sender, viewer


def ts(line) -> str:
    """A line's `time` tag as a CHATHISTORY timestamp selector."""
    return f"timestamp={line.tags['time']}"


def ms(line) -> int:
    """A line's `time` tag in milliseconds (for expected results)."""
    t = line.tags["time"]
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(t[20:23])


def same_messages(batch: Batch, live: list) -> None:
    """The batch holds exactly `live`, in order, with the original msgid,
    time and text."""
    got = [(ln.tags.get("msgid"), ln.tags.get("time"), ln.text) for ln in batch.lines]
    want = [(ln.tags["msgid"], ln.tags["time"], ln.text) for ln in live]
    assert got == want, f"history differs from what was seen live:\n got {got}\nwant {want}"


def stored_all(live: list):
    """A `done` predicate: the newest of `live` is in the batch."""
    last = live[-1].tags["msgid"]
    return lambda b: last in b.msgids


# ----------------------------------------------------------------- advertised


def test_caps_and_isupport_advertise_history(clients, uniq):
    c = clients.connect()
    caps = c.cap_ls()
    assert {"draft/chathistory", "draft/event-playback", "batch", "server-time"} <= caps, caps
    c.register(uniq("adv"))
    tokens = {}
    for ln in c.burst:
        if ln.command == "005":
            for tok in ln.params[1:-1]:
                key, _, value = tok.partition("=")
                tokens[key] = value
    assert tokens.get("CHATHISTORY") == "100", tokens
    assert tokens.get("MSGREFTYPES") == "timestamp,msgid", tokens


# --------------------------------------------------------------------- LATEST


def test_latest_returns_the_last_messages_with_their_original_tags(clients, uniq):
    chan, sender, viewer = room(clients, uniq)
    live = say(sender, chan, [f"latest {i}" for i in range(7)], [viewer])
    assert all(TIME_RX.match(ln.tags.get("time", "")) and ln.tags.get("msgid") for ln in live)

    everything = fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 100", stored_all(live))
    assert everything.kind == "chathistory" and everything.param == chan, everything
    same_messages(everything, live)
    assert all(ln.nick == sender.nick and ln.params[0] == chan for ln in everything.lines), everything

    same_messages(fetch(viewer, f"CHATHISTORY LATEST {chan} * 3"), live[-3:])
    # LATEST after a msgid / a timestamp: only what came later, newest first cut
    same_messages(fetch(viewer, f"CHATHISTORY LATEST {chan} msgid={live[3].tags['msgid']} 100"), live[4:])
    same_messages(fetch(viewer, f"CHATHISTORY LATEST {chan} msgid={live[3].tags['msgid']} 2"), live[-2:])
    after = [ln for ln in live if ms(ln) > ms(live[2])]
    same_messages(fetch(viewer, f"CHATHISTORY LATEST {chan} {ts(live[2])} 100"), after)
    # the sender reads the same history (its own messages included)
    sender.send("CAP REQ :batch server-time")
    sender.expect(r" CAP \S+ ACK ")
    same_messages(fetch(sender, f"CHATHISTORY LATEST {chan} * 100"), live)


def test_an_empty_room_answers_an_empty_batch(clients, uniq):
    chan = "#" + uniq("empty")
    c = clients.user(uniq("em"), caps=HISTORY_CAPS)
    c.join(chan)
    for cmd in (
        f"CHATHISTORY LATEST {chan} * 10",
        f"CHATHISTORY BEFORE {chan} timestamp=2099-01-01T00:00:00.000Z 10",
        f"CHATHISTORY AFTER {chan} timestamp=2000-01-01T00:00:00Z 10",
    ):
        b = fetch(c, cmd)
        assert b.kind == "chathistory" and b.param == chan and b.lines == [], (cmd, b)


def test_limit_above_the_isupport_maximum_is_clamped(clients, uniq):
    chan, sender, viewer = room(clients, uniq)
    live = say(sender, chan, [f"many {i:03}" for i in range(105)], [viewer])
    b = fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 1000", stored_all(live))
    assert len(b.lines) == 100, f"CHATHISTORY=100 but {len(b.lines)} lines came back"
    same_messages(b, live[-100:])
    huge = fetch(viewer, f"CHATHISTORY LATEST {chan} * 99999999999999999999999999")
    same_messages(huge, live[-100:])


# ------------------------------------------------ BEFORE / AFTER / AROUND / BETWEEN


def test_paging_by_msgid_and_by_timestamp(clients, uniq):
    chan, sender, viewer = room(clients, uniq)
    live = []
    for i in range(12):
        # a few ms apart, so that most messages have distinct times
        live += say(sender, chan, [f"page {i:02}"], [viewer])
        time.sleep(0.005)
    fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 100", stored_all(live))
    mid = lambda i: f"msgid={live[i].tags['msgid']}"  # noqa: E731
    first, last = live[0], live[-1]

    # BEFORE / AFTER by msgid: exclusive, the nearest `limit`, oldest first
    same_messages(fetch(viewer, f"CHATHISTORY BEFORE {chan} {mid(6)} 3"), live[3:6])
    same_messages(fetch(viewer, f"CHATHISTORY BEFORE {chan} {mid(6)} 100"), live[:6])
    same_messages(fetch(viewer, f"CHATHISTORY AFTER {chan} {mid(6)} 3"), live[7:10])
    same_messages(fetch(viewer, f"CHATHISTORY AFTER {chan} {mid(6)} 100"), live[7:])
    # nothing before the first message, nothing after the last
    same_messages(fetch(viewer, f"CHATHISTORY BEFORE {chan} msgid={first.tags['msgid']} 10"), [])
    same_messages(fetch(viewer, f"CHATHISTORY AFTER {chan} msgid={last.tags['msgid']} 10"), [])
    # exactly one page, then the page before it is empty
    page = fetch(viewer, f"CHATHISTORY LATEST {chan} * 12")
    same_messages(page, live)
    same_messages(fetch(viewer, f"CHATHISTORY BEFORE {chan} msgid={page.msgids[0]} 12"), [])
    # an unknown msgid selects nothing
    for sub in ("BEFORE", "AFTER", "AROUND"):
        same_messages(fetch(viewer, f"CHATHISTORY {sub} {chan} msgid=no-such-message 10"), [])

    # by timestamp: compared with the times the messages were given
    t6 = ms(live[6])
    same_messages(fetch(viewer, f"CHATHISTORY BEFORE {chan} {ts(live[6])} 100"),
                  [ln for ln in live if ms(ln) < t6])
    same_messages(fetch(viewer, f"CHATHISTORY AFTER {chan} {ts(live[6])} 100"),
                  [ln for ln in live if ms(ln) > t6])
    same_messages(fetch(viewer, f"CHATHISTORY BEFORE {chan} {ts(live[6])} 2"),
                  [ln for ln in live if ms(ln) < t6][-2:])
    # a timestamp without milliseconds is accepted too
    whole = live[6].tags["time"][:19] + "Z"
    cut = ms(live[6]) // 1000 * 1000
    same_messages(fetch(viewer, f"CHATHISTORY AFTER {chan} timestamp={whole} 100"),
                  [ln for ln in live if ms(ln) > cut])

    # AROUND: `limit` consecutive messages that include the anchor
    for limit in (1, 4, 5):
        b = fetch(viewer, f"CHATHISTORY AROUND {chan} {mid(6)} {limit}")
        ids = [ln.tags["msgid"] for ln in live]
        assert len(b.lines) == limit and live[6].tags["msgid"] in b.msgids, b
        start = ids.index(b.msgids[0])
        same_messages(b, live[start:start + limit])

    # BETWEEN: strictly between the two, counted from the first, either way
    same_messages(fetch(viewer, f"CHATHISTORY BETWEEN {chan} {mid(2)} {mid(9)} 100"), live[3:9])
    same_messages(fetch(viewer, f"CHATHISTORY BETWEEN {chan} {mid(2)} {mid(9)} 3"), live[3:6])
    same_messages(fetch(viewer, f"CHATHISTORY BETWEEN {chan} {mid(9)} {mid(2)} 3"), live[6:9])
    t2, t9 = ms(live[2]), ms(live[9])
    same_messages(fetch(viewer, f"CHATHISTORY BETWEEN {chan} {ts(live[2])} {ts(live[9])} 100"),
                  [ln for ln in live if t2 < ms(ln) < t9])
    same_messages(fetch(viewer, f"CHATHISTORY BETWEEN {chan} {mid(5)} {mid(6)} 10"), [])


# ------------------------------------------------------------- event-playback


def test_event_playback_shows_joins_topics_modes_parts_only_when_negotiated(clients, uniq):
    chan = "#" + uniq("ev")
    op = clients.user(uniq("op"), caps=("message-tags",))
    guest = clients.user(uniq("gu"), gw=1)
    op.join(chan)
    op.send(f"TOPIC {chan} :a topic")
    op.expect(by(op.nick) + rf"TOPIC {esc(chan)} :a topic$")
    op.send(f"MODE {chan} +l 50")
    op.expect(by(op.nick) + rf"MODE {esc(chan)} \+l 50$")
    guest.join(chan)
    guest.send(f"PRIVMSG {chan} :said once")
    op.expect(by(guest.nick) + rf"PRIVMSG {esc(chan)} :said once$")
    guest.send(f"PART {chan} :gone")
    op.expect(by(guest.nick) + rf"PART {esc(chan)} :gone$")

    with_events = clients.user(uniq("we"), caps=(*HISTORY_CAPS, "draft/event-playback"))
    without = clients.user(uniq("wo"), gw=1, caps=HISTORY_CAPS)
    for c in (with_events, without):
        c.join(chan)

    b = fetch_until(with_events, f"CHATHISTORY LATEST {chan} * 100",
                    lambda b: any(ln.nick == without.nick and ln.command == "JOIN" for ln in b.lines))
    shape = [(ln.nick, ln.command) for ln in b.lines]
    assert shape == [
        (op.nick, "JOIN"), (op.nick, "TOPIC"), (op.nick, "MODE"), (guest.nick, "JOIN"),
        (guest.nick, "PRIVMSG"), (guest.nick, "PART"), (with_events.nick, "JOIN"), (without.nick, "JOIN"),
    ], b
    topic = b.lines[1]
    assert topic.params == [chan, "a topic"] and topic.tags.get("msgid") and topic.tags.get("time"), topic.raw
    assert b.lines[5].params == [chan, "gone"], b.lines[5].raw

    plain = fetch(without, f"CHATHISTORY LATEST {chan} * 100")
    assert [(ln.nick, ln.command, ln.text) for ln in plain.lines] == [(guest.nick, "PRIVMSG", "said once")], plain


# ------------------------------------------------------------------ TARGETS


def test_targets_lists_rooms_and_direct_conversations(clients, uniq):
    chan, sender, viewer = room(clients, uniq)
    before = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 5))
    live = say(sender, chan, ["for targets"], [viewer])
    friend = clients.user(uniq("fr"), caps=("echo-message",))
    viewer.send(f"PRIVMSG {friend.nick} :hello friend")
    friend.expect(by(viewer.nick) + rf"PRIVMSG {esc(friend.nick)} :hello friend$")
    fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 10", stored_all(live))
    after = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 5))

    b = fetch_until(viewer, f"CHATHISTORY TARGETS timestamp={before} timestamp={after} 50",
                    lambda b: len(b.lines) >= 2)
    assert b.kind == "draft/chathistory-targets", b
    listed = {ln.params[1]: ln.params[2] for ln in b.lines}
    assert all(ln.command == "CHATHISTORY" and ln.params[0] == "TARGETS" for ln in b.lines), b
    assert chan in listed and friend.nick in listed, b
    for when in listed.values():
        assert TIME_RX.match(when), b
    # nothing in a window long past
    old = fetch(viewer, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2000-01-02T00:00:00.000Z 50")
    assert old.lines == [], old


# ----------------------------------------------------------------- permissions


def test_a_non_member_cannot_read_a_rooms_history(clients, uniq):
    chan, sender, viewer = room(clients, uniq)
    live = say(sender, chan, ["members only"], [viewer])
    fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 10", stored_all(live))
    outsider = clients.user(uniq("out"), caps=HISTORY_CAPS)
    outsider.send(f"CHATHISTORY LATEST {chan} * 10")
    fail = fail_line(outsider, "INVALID_TARGET")
    assert fail.params[2:4] == ["LATEST", chan], fail.raw
    outsider.expect_none("members only", within=0.5)
    # after leaving, a former member cannot either
    viewer.send(f"PART {chan}")
    viewer.expect(by(viewer.nick) + rf"PART {esc(chan)}")
    viewer.send(f"CHATHISTORY BEFORE {chan} timestamp=2099-01-01T00:00:00Z 10")
    assert fail_line(viewer, "INVALID_TARGET").params[2:4] == ["BEFORE", chan]


# ------------------------------------------------------------ malformed input


def test_malformed_commands_get_fail_codes_and_never_disconnect(clients, uniq):
    early = clients.connect()
    early.send("CHATHISTORY LATEST #x * 10")
    early.expect(r" 451 ")

    chan, sender, viewer = room(clients, uniq)
    cases = [
        ("CHATHISTORY", "NEED_MORE_PARAMS", ["*"]),
        (f"CHATHISTORY LATEST {chan}", "NEED_MORE_PARAMS", ["LATEST"]),
        (f"CHATHISTORY BETWEEN {chan} msgid=a 10", "NEED_MORE_PARAMS", ["BETWEEN"]),
        ("CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00Z 10", "NEED_MORE_PARAMS", ["TARGETS"]),
        (f"CHATHISTORY SIDEWAYS {chan} * 10", "UNKNOWN_COMMAND", ["SIDEWAYS"]),
        (f"CHATHISTORY BEFORE {chan} timestamp=yesterday 10", "INVALID_PARAMS", ["BEFORE", "timestamp=yesterday"]),
        (f"CHATHISTORY BEFORE {chan} timestamp=2020-13-01T00:00:00Z 10", "INVALID_PARAMS",
         ["BEFORE", "timestamp=2020-13-01T00:00:00Z"]),
        (f"CHATHISTORY AFTER {chan} somewhere 10", "INVALID_PARAMS", ["AFTER", "somewhere"]),
        (f"CHATHISTORY LATEST {chan} * ten", "INVALID_PARAMS", ["LATEST", "ten"]),
        (f"CHATHISTORY LATEST {chan} * -5", "INVALID_PARAMS", ["LATEST", "-5"]),
        (f"CHATHISTORY LATEST {chan} * 10 extra", "INVALID_PARAMS", ["LATEST"]),
        (f"CHATHISTORY AROUND {chan} * 10", "INVALID_PARAMS", ["AROUND", "*"]),
        ("CHATHISTORY TARGETS msgid=x timestamp=2020-01-01T00:00:00Z 10", "INVALID_PARAMS", ["TARGETS", "msgid=x"]),
        ("CHATHISTORY LATEST bad!nick * 10", "INVALID_TARGET", ["LATEST", "bad!nick"]),
        ("CHATHISTORY LATEST #bad,chan * 10", "INVALID_TARGET", ["LATEST", "#bad,chan"]),
    ]
    for command, code, context in cases:
        viewer.send(command)
        line = fail_line(viewer, code)
        assert line.params[2:2 + len(context)] == context, (command, line.raw)
    # a huge limit is not an error: it is the maximum
    assert fetch(viewer, f"CHATHISTORY LATEST {chan} * 99999999999999999999").kind == "chathistory"
    viewer.ping()
    assert not viewer.closed


@pytest.mark.timeout(90)
def test_no_history_service_means_message_error_and_the_connection_goes_on(make_platform, clients, uniq):
    """Nobody answers: each request fails after 10 s, the connection goes
    on meanwhile, and beyond 8 requests in flight the rest fail at once."""
    plat = make_platform(gateways=1, history_replicas=0)
    chan = "#" + uniq("nohist")
    c = clients.user(uniq("nh"), caps=HISTORY_CAPS, plat=plat)
    c.join(chan)
    asked = time.monotonic()
    c.send_raw("".join(f"CHATHISTORY LATEST {chan} * {n}\r\n" for n in range(1, 11)).encode())
    busy = c.collect(r"FAIL CHATHISTORY MESSAGE_ERROR ", 2, 3)
    assert [(ln.params[2:4], ln.text) for ln in busy] == [(["LATEST", chan], "Too many requests in flight")] * 2, (
        [ln.raw for ln in busy])
    # the connection is not held up while the answers are awaited
    c.send(f"PRIVMSG {chan} :still here")
    c.ping(timeout=2)
    late = c.collect(r"FAIL CHATHISTORY MESSAGE_ERROR ", 8, 20)
    waited = time.monotonic() - asked
    assert len(late) == 8 and all(
        ln.params[2:4] == ["LATEST", chan] and ln.text == "History is unavailable" for ln in late
    ), [ln.raw for ln in late]
    assert 8 < waited < 15, f"gave up after {waited:.1f}s (10 s expected)"
    c.ping()


# ------------------------------------------------------------------ durability


@pytest.mark.timeout(240)
def test_history_survives_a_restart_of_every_process(make_platform, clients, uniq):
    plat = make_platform(gateways=2)
    chan = "#" + uniq("durable")
    sender = clients.user(uniq("ds"), plat=plat)
    watcher = clients.user(uniq("dw"), gw=1, caps=HISTORY_CAPS, plat=plat)
    sender.join(chan)
    watcher.join(chan)
    sender.expect(by(watcher.nick) + rf"JOIN :?{esc(chan)}")
    live = say(sender, chan, [f"durable {i:03}" for i in range(150)], [watcher])
    fetch_until(watcher, f"CHATHISTORY LATEST {chan} * 100", stored_all(live))

    for proc in reversed(plat.all):
        problem = proc.terminate()
        assert problem is None, problem
    for c in (sender, watcher):
        c.expect_closed(timeout=15)
    plat.restart(plat.router)
    for proc in (*plat.histories, *plat.auths, *plat.gateways):
        plat.restart(proc)

    newcomer = clients.user(uniq("dn"), gw=1, caps=HISTORY_CAPS, plat=plat)
    newcomer.join(chan)
    b = fetch_until(newcomer, f"CHATHISTORY LATEST {chan} * 100", lambda b: len(b.lines) == 100)
    same_messages(b, live[-100:])


# --------------------------------------------------------------- JOIN replay


@pytest.mark.timeout(120)
def test_join_replays_the_latest_lines_to_clients_without_chathistory(make_platform, clients, uniq):
    plat = make_platform(gateways=2, env={"CHAT__IRC__JOIN_REPLAY_LINES": "5"})
    chan, sender, viewer = room(clients, uniq, plat=plat)
    live = say(sender, chan, [f"before join {i}" for i in range(8)], [viewer])
    fetch_until(viewer, f"CHATHISTORY LATEST {chan} * 100", stored_all(live))

    # batch + server-time: a chathistory batch with the original tags
    tagged = clients.user(uniq("jt"), caps=("batch", "server-time"), plat=plat)
    tagged.join(chan)
    start = tagged.expect(BATCH_START)
    assert start.params[1:] == ["chathistory", chan], start.raw
    ref = start.params[0][1:]
    end = tagged.expect(rf":\S+ BATCH -{re.escape(ref)}$")
    lines = [ln for ln in tagged.collect(rf"batch={re.escape(ref)}[; ]", 100, 0) if ln.n < end.n]
    assert [ln.text for ln in lines] == [ln.text for ln in live[-5:]], [ln.raw for ln in lines]
    assert [ln.tags.get("time") for ln in lines] == [ln.tags["time"] for ln in live[-5:]]
    # the replay follows the JOIN and its names list
    assert any(ln.command == "366" and ln.n < start.n for ln in tagged.history), start.raw

    # no caps at all: bare lines whose text starts with the date and time
    bare = clients.user(uniq("jb"), gw=1, plat=plat)
    bare.join(chan)
    got = bare.collect(by(sender.nick) + rf"PRIVMSG {esc(chan)} :", 5, 10)
    stamp = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "
    assert [re.sub(stamp, "", ln.text) for ln in got] == [ln.text for ln in live[-5:]], [ln.raw for ln in got]
    for ln, orig in zip(got, live[-5:]):
        assert re.match(stamp, ln.text) and not ln.raw.startswith("@"), ln.raw
        shown = ln.text[1:20].replace(" ", "T") + "Z"
        assert shown == orig.tags["time"][:19] + "Z", (ln.raw, orig.tags["time"])

    # a client with draft/chathistory fetches its own: no replay
    own = clients.user(uniq("jo"), caps=HISTORY_CAPS, plat=plat)
    own.join(chan)
    own.expect_none(r"before join", within=2.0)
    own.expect_none(r" BATCH \+", within=0.1)
