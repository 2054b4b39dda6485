"""Every way an IRC connection ends says why, with `ERROR :Closing Link:
<address> (<reason>)` to the client and the same reason in the QUIT the
others see (issue 7). Elsewhere: Ping timeout (test_registration), Excess
Flood (test_malformed), Killed (test_operators, NickServ GHOST in
test_accounts), too many connections (test_operators, test_admin), server
shutdown (test_admin). Here: QUIT, the registration timeout, SendQ
exceeded, and a WebSocket client's QUIT."""

from __future__ import annotations

import socket
import time

from harness.raw import WsRawClient, by, esc

CLOSING = r"^ERROR :Closing Link: 127\.0\.0\.1 \({}\)$"


def test_quit_registration_timeout_and_sendq(make_platform, clients, uniq):
    plat = make_platform(gateways=1, env={
        "CHAT__IRC__REGISTRATION_TIMEOUT_SECS": "2",
        "CHAT__IRC__SENDQ_LINES": "64",
        "CHAT__IRC__FLOOD_RATE": "0",
    })
    chan = "#" + uniq("bye")
    a = clients.user(uniq("qa"), plat=plat)
    b = clients.user(uniq("qb"), plat=plat)
    a.join(chan)
    b.join(chan)
    a.expect(by(b.nick) + rf"JOIN :?{esc(chan)}")

    # QUIT: the quitter's own ERROR, and its reason for the others.
    b.send("QUIT :gone for lunch")
    b.expect(CLOSING.format(r"Quit: gone for lunch"))
    b.expect_closed()
    a.expect(by(b.nick) + r"QUIT :Quit: gone for lunch$")

    # Never finishing registration.
    slow = clients.connect(plat=plat)
    slow.send(f"NICK {uniq('rt')}")
    slow.expect(CLOSING.format("Registration timed out"), timeout=10)
    slow.expect_closed()

    # A client that stops reading while its channel is busy: its SendQ
    # fills and it is disconnected; the others are told why.
    port = plat.gateway(0).irc_port
    lazy_nick = uniq("ls")
    lazy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect(("127.0.0.1", port))
    lazy.sendall(f"NICK {lazy_nick}\r\nUSER l 0 * :lazy\r\nJOIN {chan}\r\n".encode())
    a.expect(by(lazy_nick) + rf"JOIN :?{esc(chan)}")
    text = "x" * 440
    deadline = time.monotonic() + 60
    quit_line = None
    sent = 0
    while quit_line is None and time.monotonic() < deadline:
        for _ in range(250):
            a.send(f"PRIVMSG {chan} :{sent} {text}")
            sent += 1
        a.ping()
        try:
            quit_line = a.expect(by(lazy_nick) + r"QUIT :", timeout=0.5)
        except AssertionError:
            pass
    assert quit_line is not None, f"still connected after {sent} lines"
    assert quit_line.text == "SendQ exceeded", quit_line.raw
    # What it finally reads ends with its ERROR line, or the line was lost
    # with its unread backlog; either way the connection is closed.
    lazy.settimeout(10)
    tail = b""
    while True:
        chunk = lazy.recv(65536)
        if not chunk:
            break
        tail = (tail + chunk)[-4096:]
    lazy.close()
    last = tail.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1].decode("utf-8", "replace")
    assert last.startswith("ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)") or "ERROR" not in last, last
    a.drain()


def test_websocket_quit_gets_its_error_line(platform, clients, uniq):
    chan = "#" + uniq("wsq")
    watcher = clients.user(uniq("ww"))
    watcher.join(chan)
    ws = WsRawClient(f"ws://127.0.0.1:{platform.gateway(0).http_port}/irc", label="ws")
    try:
        nick = uniq("wq")
        ws.register(nick)
        ws.join(chan)
        watcher.expect(by(nick) + rf"JOIN :?{esc(chan)}")
        ws.send("QUIT :over and out")
        ws.expect(CLOSING.format("Quit: over and out"))
        ws.expect_closed()
        watcher.expect(by(nick) + r"QUIT :Quit: over and out$")
    finally:
        ws.close()
