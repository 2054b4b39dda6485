"""The router's room records in NATS: a record holds the room's state while
it has members; an emptied room leaves its husk (the same key, no members,
its seq and message number kept), so a room created again under that name
continues both numbers instead of starting at 1 again, and history keeps
both lives in one conversation."""

from __future__ import annotations

import json
import time

from harness.infra import escape_name, kv_get, kv_subjects
from harness.raw import by, esc
from test_chathistory import HISTORY_CAPS, fetch_until, same_messages, say


def _wait(cond, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def _record(prefix: str, key: str) -> dict | None:
    raw = kv_get(prefix, "rooms", key)
    return json.loads(raw) if raw else None


def _wait_record(prefix: str, key: str, want, what: str) -> dict:
    """Waits for the router's record to satisfy `want` (the router writes
    it after each batch) and returns it."""
    seen: list = [None]

    def ok() -> bool:
        seen[0] = _record(prefix, key)
        return seen[0] is not None and want(seen[0])

    assert _wait(ok), f"room record {key}: {what}; last seen {seen[0]}"
    return seen[0]


def test_emptied_room_leaves_a_husk_and_continues_its_numbers(platform, clients, uniq):
    chan = "#" + uniq("rec") + ".x"
    key = "room." + escape_name(chan[1:])
    subject = f"$KV.{platform.prefix}_rooms.{key}"
    a = clients.user(uniq("ra"), gw=0, caps=HISTORY_CAPS)
    b = clients.user(uniq("rb"), gw=1)
    a.join(chan)
    b.join(chan)
    a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}$")

    # Two joins, two messages and a notice: seq 5, message number 3.
    first = say(b, chan, ["one", "two"], [a])
    b.send(f"NOTICE {chan} :three")
    first.append(a.expect(by(b.nick) + rf"NOTICE {esc(chan)} :three$"))
    rec = _wait_record(platform.prefix, key, lambda r: r["seq"] == 5, "seq 5 after 5 events")
    assert rec.get("mseq") == 3, rec
    assert len(rec["members"]) == 2

    a.send(f"PART {chan}")
    b.send(f"PART {chan}")
    b.expect(by(b.nick) + rf"PART {esc(chan)}")
    husk = _wait_record(platform.prefix, key, lambda r: not r["members"], "no husk after the room emptied")
    assert (husk["seq"], husk.get("mseq")) == (7, 3), husk
    assert husk["room"] == chan[1:].lower() and not husk.get("topic") and not husk.get("bans"), husk
    assert subject in kv_subjects(platform.prefix, "rooms")

    # Created again (by b, now its op), joined by a: the numbers go on.
    b.join(chan)
    a.join(chan)
    b.expect(by(a.nick) + rf"JOIN :?{esc(chan)}")
    second = say(a, chan, ["four"], [b])
    again = _wait_record(platform.prefix, key, lambda r: r["seq"] == 10, "seq 10 after 3 more events")
    assert again.get("mseq") == 4, again
    ops = {m["actor"]["nick"]: m["op"] for m in again["members"]}
    assert ops == {b.nick: True, a.nick: False}, "the new creator gets op"

    # CHATHISTORY shows both lives of the room, in order, as seen live.
    batch = fetch_until(a, f"CHATHISTORY LATEST {chan} * 10", lambda bt: "four" in bt.texts)
    assert batch.texts == ["one", "two", "three", "four"], batch
    first_seen = [ln for ln in batch.lines if ln.text != "four"]
    assert [ln.tags.get("msgid") for ln in first_seen] == [ln.tags["msgid"] for ln in first]
    last = batch.lines[-1]
    assert last.tags.get("msgid") and last.tags.get("msgid") not in [ln.tags["msgid"] for ln in first]
    # And paging across the boundary by msgid works.
    before = fetch_until(
        a,
        f"CHATHISTORY BEFORE {chan} msgid={last.tags['msgid']} 10",
        lambda bt: len(bt.texts) == 3,
    )
    same_messages(before, first)
