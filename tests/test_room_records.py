"""The router's room records in NATS: a record exists while the room has
members, and an emptied room leaves nothing behind in the bucket's stream
(no delete marker), so room listings and partition takeovers don't grow
with every room ever created."""

from __future__ import annotations

import time

from harness.infra import escape_name, kv_get, kv_subjects
from harness.raw import by, esc


def _wait(cond, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_emptied_room_leaves_no_record_and_no_marker(platform, clients, uniq):
    chan = "#" + uniq("rec") + ".x"
    key = "room." + escape_name(chan[1:])
    subject = f"$KV.{platform.prefix}_rooms.{key}"
    a = clients.user(uniq("ra"), gw=0)
    b = clients.user(uniq("rb"), gw=1)
    a.join(chan)
    b.join(chan)
    a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}$")

    assert _wait(lambda: kv_get(platform.prefix, "rooms", key) is not None), (
        f"no room record under {key} while the room has members"
    )
    a.send(f"PART {chan}")
    b.send(f"PART {chan}")
    b.expect(by(b.nick) + rf"PART {esc(chan)}")

    assert _wait(lambda: kv_get(platform.prefix, "rooms", key) is None), "record of an empty room kept"
    assert _wait(lambda: subject not in kv_subjects(platform.prefix, "rooms")), (
        f"{subject} still held by the stream after the room emptied (a delete marker)"
    )
