"""Failures: a gateway killed with SIGKILL (its users QUIT for everyone
else, their nicks become free) and a router killed with SIGKILL and
restarted while messages stream (nothing acknowledged is lost, nothing is
duplicated, the order holds). Each test has its own platform with a 3 s
session TTL and a 1 s router sweep."""

from __future__ import annotations

import threading
import time

import pytest

from harness.raw import by, esc


@pytest.mark.timeout(120)
def test_killed_gateway_users_quit_and_the_rest_keeps_working(make_platform, clients, uniq):
    plat = make_platform(gateways=2)
    chan = "#" + uniq("fail")
    a = clients.user(uniq("fa"), gw=0, plat=plat)
    b1 = clients.user(uniq("fb"), gw=1, plat=plat)
    b2 = clients.user(uniq("fc"), gw=1, plat=plat)
    a.join(chan)
    for b in (b1, b2):
        b.join(chan)
        a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}$")

    killed_at = time.monotonic()
    plat.kill9(plat.gateways[1])
    for b in (b1, b2):
        a.expect(by(b.nick) + r"QUIT(?: |$)", timeout=15)
    took = time.monotonic() - killed_at
    assert took < 10, f"QUITs of a dead gateway's users took {took:.1f}s (TTL 3 s + sweep 1 s)"
    assert a.names(chan) == [f"@{a.nick}"]

    # gateway A keeps working: new joins and messages
    c = clients.user(uniq("fd"), gw=0, plat=plat)
    c.join(chan)
    a.expect(by(c.nick) + rf"JOIN :?{esc(chan)}$")
    c.send(f"PRIVMSG {chan} :still alive")
    a.expect(by(c.nick) + rf"PRIVMSG {esc(chan)} :still alive$")
    other = "#" + uniq("fresh")
    a.join(other)

    # the killed users' nicks are free again
    deadline = time.monotonic() + 10
    while True:
        again = clients.connect(0, plat)
        again.send(f"NICK {b1.nick}")
        again.send("USER again 0 * :Again")
        line = again.expect(r" (?:001|433) \S+ ", timeout=5)
        if line.command == "001":
            break
        again.close()
        assert time.monotonic() < deadline, f"nick {b1.nick} of a killed session still taken after 10 s"
        time.sleep(0.5)


@pytest.mark.timeout(180)
def test_router_killed_and_restarted_mid_stream(make_platform, clients, uniq):
    plat = make_platform(gateways=2)
    chan = "#" + uniq("rr")
    sender = clients.user(uniq("rs"), gw=0, plat=plat, caps=("echo-message",))
    listener = clients.user(uniq("rl"), gw=1, plat=plat)
    sender.join(chan)
    listener.join(chan)
    sender.expect(by(listener.nick) + rf"JOIN :?{esc(chan)}$")

    total = 300
    sent = threading.Event()

    def stream():
        for n in range(total):
            sender.send(f"PRIVMSG {chan} :m {n}")
            time.sleep(0.01)
        sent.set()

    t = threading.Thread(target=stream)
    t.start()
    # kill the router after about a third of the stream, restart it 2 s later
    pattern = rf" PRIVMSG {esc(chan)} :m \d+$"
    early = sender.collect(pattern, 100, timeout=30)
    assert len(early) == 100, f"only {len(early)} echoes before the router kill"
    plat.kill9(plat.router)
    time.sleep(2)
    plat.start_router()
    t.join()
    assert sent.is_set()

    echoes = [ln.text for ln in early] + [ln.text for ln in sender.collect(pattern, total - 100, timeout=60)]
    got = [ln.text for ln in listener.collect(pattern, total, timeout=60)]
    expected = [f"m {n}" for n in range(total)]
    assert len(set(echoes)) == len(echoes), "the sender saw an echo twice"
    missing_at_listener = [e for e in echoes if e not in set(got)]
    assert not missing_at_listener, f"echoed (acknowledged) but never delivered: {missing_at_listener[:10]}"
    assert len(got) == len(set(got)), f"duplicates at the listener: {len(got) - len(set(got))}"
    assert got == sorted(got, key=lambda s: int(s.split()[1])), "listener got messages out of order"
    assert echoes == expected, (
        f"every message sent while the router was down must be delivered late, not lost: "
        f"{len(echoes)}/{total} echoed, missing {sorted(set(expected) - set(echoes))[:10]}"
    )
    assert got == expected, f"listener: {len(got)}/{total}, missing {sorted(set(expected) - set(got))[:10]}"
    listener.expect_none(pattern, within=1.0)  # and nothing more (no late duplicates)
