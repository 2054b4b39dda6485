"""RabbitMQ restarted mid-stream (and the history service killed and
restarted later in the stream, when the platform has one): every process
rides it out, clients stay connected, and nothing is lost or duplicated.
The history service rides out the broker restart by itself (the same
process stores the messages sent after it) before it is killed.

Four clients on two gateways stream 2,000 numbered messages into one room.
While the broker is away the gateway refuses what is sent ("could not be
delivered"), so those messages are never echoed; once the platform is back
and quiet, each client resends exactly the messages it never saw echoed
(an echo that arrives late means the message was processed, so it is
never resent). Then every client must have received every message exactly
once, all four in the same order with the same msgids, and the history
service (if any) must have stored exactly that sequence. Private messages
between the gateways still arrive afterwards (the session queues are
consumed again).

The broker is a private node (`harness.broker`): the shared one is never
stopped.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from harness.broker import PrivateBroker
from harness.platform import Process, tail
from harness.raw import by, esc

SENDERS = 4
PER_SENDER = 500  # 2,000 in all
RATE_PER_SENDER = 20.0  # lines per second: 80/s in all, a 25 s stream
# A sender that reaches this message while the platform is not back yet
# waits for it: a node's boot time varies (5 to 20 s on a busy 2-core
# machine), and the rest of the stream must be sent after the recovery.
GATE = 300
BROKER_STOP_AFTER = 3.0  # seconds into the stream
BROKER_DOWN = 3.0  # seconds the node stays stopped (plus its boot time)
HISTORY_KILL_AFTER_RECOVERY = 2.0
HISTORY_ROWS_TIMEOUT = 15.0  # for rows stored after the broker restart
RESUBSCRIBE_TIMEOUT = 10.0  # the history consumers, after the platform is ready
QUIET = 3.0  # no new echo for this long: what was processed has arrived
CAPS = ("echo-message", "server-time", "message-tags")


@pytest.fixture
def private_broker():
    broker = PrivateBroker()
    try:
        broker.start()
    except Exception:
        broker.close()
        raise
    yield broker
    problems = broker.close()
    if problems:
        pytest.fail("private broker teardown: " + "; ".join(problems))


def received(client, chan: str) -> list[tuple[str, str]]:
    """(text, msgid) of every message of the stream the client received, in
    order (from its full history, so nothing consumed elsewhere is missed)."""
    rx = re.compile(rf" PRIVMSG {esc(chan)} :(m\d-\d{{3}})$")
    out = []
    for line in list(client.history):
        m = rx.search(line.raw)
        if m:
            out.append((m.group(1), line.tags.get("msgid", "")))
    return out


def own_echoes(client, chan: str, sender: int) -> set[str]:
    return {text for text, _ in received(client, chan) if text.startswith(f"m{sender}-")}


def wait_ready(plat, timeout: float = 60.0) -> None:
    """Waits until every running process answers /readyz with 200."""
    deadline = time.monotonic() + timeout
    for proc in plat.all:
        if not proc.alive:
            continue
        while True:
            status, body = proc.get("/readyz")
            if status == 200:
                break
            assert time.monotonic() < deadline, f"{proc.name} not ready again after the broker restart: {body}"
            time.sleep(0.2)


def stored_messages(plat, chan: str) -> int:
    """How many messages of `chan` the history service has stored."""
    query = (
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation "
        "WHERE c.key = %s AND m.kind = 'message'"
    )
    return plat.sql(query, (f"room:{chan.lstrip('#').lower()}",))[0][0]


def assert_same_process(proc: Process, pid: int, when: str) -> None:
    """`proc` is still the process with `pid`, running."""
    assert proc.popen is not None and proc.popen.pid == pid, f"{proc.name} was replaced {when}"
    assert proc.alive, (
        f"{proc.name} exited {when} (code {proc.popen.returncode}); log tail:\n{tail(proc.log)}"
    )


def resubscriptions(proc: Process) -> dict[str, float]:
    """history_resubscriptions_total by queue, from the process's /metrics."""
    status, body = proc.get("/metrics")
    assert status == 200, f"{proc.name} /metrics: {status}"
    rx = re.compile(r'^history_resubscriptions_total\{queue="(\w+)"\} (\S+)$', re.M)
    return {queue: float(value) for queue, value in rx.findall(body)}


def wait_quiet(clients, chan: str, quiet: float, timeout: float) -> None:
    """Waits until no client received a new stream message for `quiet` s."""
    deadline = time.monotonic() + timeout
    last = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        counts = [len(received(c, chan)) for c in clients]
        if counts != last:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


@pytest.mark.timeout(240)
def test_broker_restart_mid_stream_loses_and_duplicates_nothing(private_broker, make_platform, clients, uniq):
    plat = make_platform(gateways=2, broker=private_broker.broker)
    chan = "#" + uniq("brr")
    users = [clients.user(uniq(f"br{i}"), gw=i % 2, plat=plat, caps=CAPS) for i in range(SENDERS)]
    for u in users:
        u.join(chan)
    nicks = sorted(u.nick for u in users)
    for u in users:
        assert sorted(n.lstrip("@") for n in u.names(chan)) == nicks

    texts = {i: [f"m{i}-{n:03d}" for n in range(PER_SENDER)] for i in range(SENDERS)}
    everything = {t for ts in texts.values() for t in ts}

    finished: list[float] = []
    back = threading.Event()  # set once every process is ready again

    def stream(i: int) -> None:
        start = time.monotonic()
        for n, text in enumerate(texts[i]):
            if n == GATE and not back.is_set():
                back.wait(timeout=180)
                start = time.monotonic() - n / RATE_PER_SENDER
            delay = start + n / RATE_PER_SENDER - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            users[i].send(f"PRIVMSG {chan} :{text}")
        finished.append(time.monotonic())

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(SENDERS)]
    started = time.monotonic()
    for t in threads:
        t.start()

    history = plat.histories[0] if plat.histories else None
    history_pid = history.popen.pid if history and history.popen else None

    # Mid-stream: a full stop of the broker, a few seconds down, a start.
    time.sleep(BROKER_STOP_AFTER)
    before = sum(len(own_echoes(u, chan, i)) for i, u in enumerate(users))
    assert before > 0, "nothing was echoed before the broker restart"
    outage = private_broker.restart(down=BROKER_DOWN)
    recovered_at = time.monotonic()
    if history:
        assert_same_process(history, history_pid, "during the broker outage")
    wait_ready(plat)
    ready_after = time.monotonic() - recovered_at
    back.set()

    if history:
        # The history service rode the restart out by itself: the same
        # process, ready again, has subscribed again to its three queues and
        # goes on storing the stream (only a consumer of the new connection
        # can store anything now).
        assert_same_process(history, history_pid, "after the broker restart")
        # Each consumer counts its loss when it notices it: at once when its
        # consumer stream fails, within the settlement bound (5 s) when the
        # loss caught it settling a batch.
        deadline = time.monotonic() + RESUBSCRIBE_TIMEOUT
        while True:
            again = resubscriptions(history)
            if all(again.get(q, 0) >= 1 for q in ("events", "direct", "requests")):
                break
            assert time.monotonic() < deadline, (
                f"{history.name} did not subscribe again to every queue: {again}; "
                f"log tail:\n{tail(history.log)}"
            )
            time.sleep(0.2)
        rows_at_recovery = stored_messages(plat, chan)
        deadline = time.monotonic() + HISTORY_ROWS_TIMEOUT
        while stored_messages(plat, chan) <= rows_at_recovery:
            assert time.monotonic() < deadline, (
                f"{history.name} stored nothing in {HISTORY_ROWS_TIMEOUT}s after the broker restart "
                f"({rows_at_recovery} rows before); log tail:\n{tail(history.log)}"
            )
            time.sleep(0.2)
        assert_same_process(history, history_pid, "while storing after the broker restart")

    # Later in the stream: the history service killed and restarted.
    history_restarted = False
    if history:
        time.sleep(max(0.0, recovered_at + ready_after + HISTORY_KILL_AFTER_RECOVERY - time.monotonic()))
        plat.kill9(history)
        time.sleep(0.5)
        plat.restart(history)
        history_restarted = True
    for t in threads:
        t.join()
    stream_secs = time.monotonic() - started
    assert max(finished) > recovered_at + 1, (
        f"the stream ended before the broker was back (outage {outage:.1f}s): nothing was sent after it"
    )

    # Settle: everything the platform took has been delivered by now.
    wait_ready(plat)
    wait_quiet(users, chan, QUIET, timeout=60)
    refused = {i: sorted(set(texts[i]) - own_echoes(u, chan, i)) for i, u in enumerate(users)}
    notices = sum(
        1 for u in users for ln in list(u.history) if "could not be delivered" in ln.raw
    )
    assert sum(map(len, refused.values())) > 0, (
        "no message was refused while the broker was down: the outage missed the stream"
    )
    for i, missing in refused.items():
        for text in missing:
            users[i].send(f"PRIVMSG {chan} :{text}")

    # Every message, once, everywhere.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(len({t for t, _ in received(u, chan)}) >= len(everything) for u in users):
            break
        time.sleep(0.2)
    wait_quiet(users, chan, 1.5, timeout=30)  # late duplicates would show now

    diag = (
        f"outage {outage:.1f}s, ready {ready_after:.1f}s after the node was up, stream {stream_secs:.1f}s, "
        f"{sum(map(len, refused.values()))} refused and resent, {notices} refusal notices, "
        f"history restarted: {history_restarted}"
    )
    for u in users:
        assert not u.closed, f"{u.nick} was disconnected ({diag})"
    sequences = []
    for u in users:
        got = received(u, chan)
        seen = [t for t, _ in got]
        dups = len(seen) - len(set(seen))
        assert dups == 0, f"{u.nick} received {dups} duplicates, e.g. {[t for t in set(seen) if seen.count(t) > 1][:5]} ({diag})"
        missing = sorted(everything - set(seen))
        assert not missing, f"{u.nick} never received {len(missing)}: {missing[:10]} ({diag})"
        assert all(msgid for _, msgid in got), f"{u.nick} received a message without msgid ({diag})"
        sequences.append(got)
    for u, seq in zip(users[1:], sequences[1:]):
        if seq != sequences[0]:
            first = next(n for n, (a, b) in enumerate(zip(seq, sequences[0])) if a != b)
            pytest.fail(
                f"{u.nick} and {users[0].nick} differ from position {first}: "
                f"{seq[first:first + 3]} vs {sequences[0][first:first + 3]} ({diag})"
            )

    print(f"broker restart: {diag}")  # shown with -s / -rP

    # The session queues were consumed again too: private messages between
    # the gateways arrive, once.
    for i, (a, b) in enumerate([(users[0], users[1]), (users[3], users[2])]):
        a.send(f"PRIVMSG {b.nick} :direct {i} after the restart")
        b.expect(by(a.nick) + rf"PRIVMSG {esc(b.nick)} :direct {i} after the restart$", timeout=10)
        b.expect_none(rf"direct {i} after the restart", within=0.5)

    if plat.histories:
        folded = chan.lstrip("#").lower()
        expected = [(msgid, text) for text, msgid in sequences[0]]
        query = (
            "SELECT m.msgid, m.body FROM messages m JOIN conversations c ON c.id = m.conversation "
            "WHERE c.key = %s AND m.kind = 'message' ORDER BY m.seq"
        )
        deadline = time.monotonic() + 30
        while True:
            rows = [(str(msgid), body) for msgid, body in plat.sql(query, (f"room:{folded}",))]
            if len(rows) >= len(expected) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert rows == expected, (
            f"history holds {len(rows)} rows, {len(set(rows))} distinct, for {len(expected)} messages; "
            f"first difference at {next((n for n, (a, b) in enumerate(zip(rows, expected)) if a != b), min(len(rows), len(expected)))} ({diag})"
        )


@pytest.mark.timeout(120)
def test_sigterm_during_a_broker_outage_exits_promptly(private_broker, make_platform, clients, uniq):
    """With the broker away, the router, the auth service, the history
    service and the gateway still stop at once on SIGTERM (nothing waits
    for a connection that is not coming back), cleanly, and the client was
    never disconnected."""
    plat = make_platform(gateways=1, broker=private_broker.broker)
    riders = [p for p in plat.all if p.kind in ("router", "auth", "history", "gateway")]
    chan = "#" + uniq("so")
    a = clients.user(uniq("so"), gw=0, plat=plat)
    a.join(chan)
    private_broker.stop()
    try:
        deadline = time.monotonic() + 15
        for proc in riders:
            while proc.get("/readyz")[0] == 200:
                assert time.monotonic() < deadline, f"{proc.name} still ready with the broker stopped"
                time.sleep(0.2)
        a.send(f"PRIVMSG {chan} :into the void")
        a.expect(r"could not be delivered", timeout=5)
        assert not a.closed, "the client was disconnected by the outage"
        timings = {}
        for proc in reversed(riders):
            assert proc.alive, f"{proc.name} exited during the outage (code {proc.popen.returncode})"
            started = time.monotonic()
            problem = proc.terminate(grace=10)
            timings[proc.name] = time.monotonic() - started
            assert problem is None, problem
            assert proc.popen.returncode == 0, f"{proc.name} exited with {proc.popen.returncode}"
        slow = {name: round(t, 1) for name, t in timings.items() if t > 5}
        assert not slow, f"slow to stop during the outage: {slow}"
    finally:
        # The platform's vhost is removed from the broker at teardown.
        private_broker.start()
