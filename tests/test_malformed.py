"""Hostile and broken input over raw sockets. After each abuse the abusing
connection (where it should survive) and everyone else keep working."""

from __future__ import annotations

import os
import time

import pytest

from harness.raw import by, esc


@pytest.fixture
def room(clients, uniq):
    """(abuser, witness, channel): both on gateway 0 in one channel."""
    chan = "#" + uniq("mal")
    abuser = clients.user(uniq("ab"))
    witness = clients.user(uniq("wi"), gw=1)
    abuser.join(chan)
    witness.join(chan)
    abuser.expect(by(witness.nick) + rf"JOIN :?{esc(chan)}$")
    return abuser, witness, chan


def still_chatting(abuser, witness, chan, text="still here"):
    abuser.ping()
    abuser.send(f"PRIVMSG {chan} :{text}")
    witness.expect(by(abuser.nick) + rf"PRIVMSG {esc(chan)} :{esc(text)}$")


def test_overlong_line_gets_417(room):
    abuser, witness, chan = room
    abuser.send(f"PRIVMSG {chan} :" + "x" * 600)
    abuser.expect(abuser.num("417") + r":")
    witness.expect_none(r"xxxxxxxxxx", within=0.5)
    still_chatting(abuser, witness, chan)


def test_huge_tags_get_417(room):
    abuser, witness, chan = room
    abuser.send("@+big=" + "t" * 9000 + f" PRIVMSG {chan} :tagged")
    abuser.expect(abuser.num("417") + r":")
    witness.expect_none(r":tagged$", within=0.5)
    still_chatting(abuser, witness, chan)


def test_invalid_utf8_gets_fail(room):
    abuser, witness, chan = room
    abuser.send_raw(f"PRIVMSG {chan} :bad ".encode() + b"\xff\xfe\xc3(" + b"\r\n")
    abuser.expect(r"^(?:@\S+ )?(?::\S+ )?FAIL \S+ INVALID_UTF8 ")
    witness.expect_none(r":bad ", within=0.5)
    still_chatting(abuser, witness, chan)


def test_binary_garbage_and_nuls(room):
    abuser, witness, chan = room
    abuser.send_raw(b"\x00\x01\x02\x03garbage\x00\x00\r\n")
    abuser.send_raw(os.urandom(300).replace(b"\n", b"").replace(b"\r", b"") + b"\r\n")
    abuser.send_raw(b"\x00" * 100 + b"\n")
    still_chatting(abuser, witness, chan)


def test_bare_newlines_and_lf_only_lines(room):
    abuser, witness, chan = room
    abuser.send_raw(b"\n\n\r\n\n")
    abuser.send_raw(f"PRIVMSG {chan} :lf only\n".encode())
    witness.expect(by(abuser.nick) + rf"PRIVMSG {esc(chan)} :lf only$")
    still_chatting(abuser, witness, chan)


def test_twenty_params(room):
    abuser, witness, chan = room
    params = " ".join(f"p{i}" for i in range(20))
    abuser.send(f"PRIVMSG {chan} {params}")
    abuser.send(f"MODE {chan} +oooooooooooooooooooo {params}")
    abuser.send(f"JOIN {params}")
    abuser.send(f"FOO {params}")
    abuser.expect(abuser.num("421") + "FOO ")
    still_chatting(abuser, witness, chan)


def test_privmsg_without_params(room):
    abuser, witness, chan = room
    abuser.send("PRIVMSG")
    abuser.expect(abuser.num("411"))
    abuser.send("PRIVMSG :")
    still_chatting(abuser, witness, chan)


def test_half_a_line_then_disconnect(clients, room, uniq):
    _, witness, chan = room
    quitter = clients.user(uniq("hl"))
    quitter.join(chan)
    witness.expect(by(quitter.nick) + rf"JOIN :?{esc(chan)}$")
    quitter.send_raw(f"PRIVMSG {chan} :half a li".encode())
    time.sleep(0.3)
    quitter.close()
    witness.expect(by(quitter.nick) + r"QUIT(?: |$)", timeout=10)
    witness.expect_none(r"half a li", within=0.1)
    witness.ping()


def test_five_hundred_lines_in_one_write(room):
    abuser, witness, chan = room
    abuser.send_raw(b"".join(f"PING :burst{n}\r\n".encode() for n in range(500)))
    pongs = abuser.collect(r" PONG .*burst\d+$", 500, timeout=20)
    assert [p.params[-1] for p in pongs] == [f"burst{n}" for n in range(500)], f"{len(pongs)} PONGs"
    abuser.send_raw(b"".join(f"PRIVMSG {chan} :line {n}\r\n".encode() for n in range(500)))
    got = witness.collect(rf" PRIVMSG {esc(chan)} :line \d+$", 500, timeout=30)
    assert [g.text for g in got] == [f"line {n}" for n in range(500)], f"{len(got)} of 500, in order"


@pytest.fixture
def strict_gateway(platform):
    """An extra gateway with the DEFAULT flood control (burst 20, 10 lines/s)."""
    gw = platform.start_gateway({"CHAT__IRC__FLOOD_BURST": "20", "CHAT__IRC__FLOOD_RATE": "10"})
    yield gw
    problem = gw.terminate()
    assert problem is None, problem


def test_flood_is_throttled_or_killed_and_others_are_fine(clients, uniq, strict_gateway):
    chan = "#" + uniq("flood")
    flooder = clients.connect(strict_gateway)
    flooder.register(uniq("fl"))
    calm = clients.connect(strict_gateway)
    calm.register(uniq("ca"))
    calm.join(chan)
    flooder.join(chan)

    start = time.monotonic()
    flooder.send_raw(b"".join(f"PING :flood{n}\r\n".encode() for n in range(300)))
    # the calm client on the same gateway is not slowed down
    rtt_start = time.monotonic()
    calm.ping(timeout=3)
    assert time.monotonic() - rtt_start < 2, "a flooder slowed down another client"
    pongs = flooder.collect(r" PONG .*flood\d+$", 300, timeout=3)
    elapsed = time.monotonic() - start
    # 20 burst + 10/s: far fewer than 300 answers within ~3 s, or a kill
    allowed = 20 + 10 * elapsed + 15
    if flooder.closed:
        err = flooder.expect(r"^(?::\S+ )?ERROR ", timeout=1)
        assert "Excess Flood" in err.raw, err.raw
        calm.expect(by(flooder.nick) + r"QUIT :.*Excess Flood", timeout=5)
    else:
        # throttled rather than killed (yet): the answers must be delayed
        assert len(pongs) <= allowed, f"no flood control: {len(pongs)} answers in {elapsed:.1f}s (limit ~{allowed:.0f})"
    calm.ping()
    calm.send(f"PRIVMSG {chan} :calm message")
    calm.ping()


def test_fresh_client_after_all_the_abuse(clients, uniq):
    chan = "#" + uniq("after")
    a = clients.user(uniq("fa"), gw=0)
    b = clients.user(uniq("fb"), gw=1)
    a.join(chan)
    b.join(chan)
    b.send(f"PRIVMSG {chan} :all good")
    a.expect(by(b.nick) + rf"PRIVMSG {esc(chan)} :all good$")
