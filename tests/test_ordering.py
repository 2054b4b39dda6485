"""Total order: three senders on both gateways flood one channel; every
member receives every message exactly once, all in one identical order."""

from __future__ import annotations

import threading

import pytest

from harness.raw import by, esc

PER_SENDER = 334  # 3 × 334 = 1002 messages
SENDERS = ((0, "s0"), (1, "s1"), (0, "s2"))  # (gateway, label)
LISTENERS = (0, 1, 1)


@pytest.mark.timeout(240)
def test_one_identical_order_for_every_member(clients, uniq):
    chan = "#" + uniq("order")
    members = []
    senders = []
    for gw, label in SENDERS:
        c = clients.user(uniq(label), gw=gw, caps=("echo-message",))
        senders.append((c, label))
        members.append(c)
    for gw in LISTENERS:
        members.append(clients.user(uniq("l"), gw=gw))
    for i, c in enumerate(members):
        c.join(chan)
        for earlier in members[:i]:
            earlier.expect(by(c.nick) + rf"JOIN :?{esc(chan)}$")

    def blast(client, label):
        data = "".join(f"PRIVMSG {chan} :{label} {n}\r\n" for n in range(PER_SENDER))
        client.send_raw(data.encode())

    threads = [threading.Thread(target=blast, args=s) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    total = PER_SENDER * len(SENDERS)
    pattern = rf" PRIVMSG {esc(chan)} :s[0-2] \d+$"
    sequences = {}
    for c in members:
        got = c.collect(pattern, total, timeout=90)
        sequences[c.nick] = [ln.text for ln in got]

    reference_nick, reference = next(iter(sequences.items()))
    expected = {f"{label} {n}" for _, label in SENDERS for n in range(PER_SENDER)}
    for nick, seq in sequences.items():
        missing = expected - set(seq)
        dupes = len(seq) - len(set(seq))
        assert not missing and not dupes and len(seq) == total, (
            f"{nick}: got {len(seq)}/{total}, {len(missing)} missing (e.g. {sorted(missing)[:5]}), {dupes} duplicated"
        )
        for _, label in SENDERS:
            mine = [int(t.split()[1]) for t in seq if t.startswith(label + " ")]
            assert mine == list(range(PER_SENDER)), f"{nick}: {label}'s messages out of their send order"
    for nick, seq in sequences.items():
        if seq != reference:
            first = next(i for i, (x, y) in enumerate(zip(seq, reference)) if x != y)
            pytest.fail(
                f"{nick} and {reference_nick} disagree on the order from position {first}: "
                f"{seq[first:first + 5]} vs {reference[first:first + 5]}"
            )
