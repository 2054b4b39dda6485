"""IRC over WebSocket (the IRCv3 `websocket` specification) at `/irc` on
the gateway's HTTP port.

A real client library (irc-framework, the library inside Kiwi IRC, through
tests/js/irc-agent.mjs) chats over WebSocket with another one over TCP;
raw frames (Python `websockets`, harness.raw.WsRawClient) cover the
transport itself: subprotocol negotiation in the client's order and the
fallback without one, text vs binary messages, line endings, a message
holding two lines, over-long and huge messages, WebSocket pings, the close,
admission against `max_connections` and the drain on SIGTERM.
"""

from __future__ import annotations

import time

import pytest

from harness.raw import WsRawClient, by, esc

TEXT = "text.ircv3.net"
BINARY = "binary.ircv3.net"


def ws_url(plat, gw=0) -> str:
    return f"ws://127.0.0.1:{plat.gateway(gw).http_port}/irc"


@pytest.fixture
def ws_clients(platform):
    """ws_clients(gw=0, subprotocols=(TEXT,), plat=None, **kw) → a WsRawClient
    on `/irc`, closed after the test."""
    opened: list[WsRawClient] = []

    def make(gw=0, subprotocols=(TEXT,), plat=None, **kw) -> WsRawClient:
        c = WsRawClient(ws_url(plat or platform, gw), subprotocols=subprotocols, **kw)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def no_line_endings(c: WsRawClient) -> None:
    for m in c.messages:
        raw = m if isinstance(m, bytes) else m.encode()
        assert b"\r" not in raw and b"\n" not in raw, f"line ending in a message: {m!r}"


def test_irc_framework_over_websocket_and_tcp_chat_both_ways(platform, ircagents, clients, uniq):
    chan = "#" + uniq("wsfw")
    watcher = clients.user(uniq("rawtcp"))
    watcher.join(chan)
    tcp = ircagents(platform, uniq("fwtcp"), gw=1, transport="tcp")
    ws = ircagents(platform, uniq("fwws"), gw=0, transport="ws")
    tcp.call("join", channel=chan)
    ws.call("join", channel=chan)

    tcp.call("say", target=chan, text="hello from tcp")
    ws.privmsg(tcp.nick, chan, "hello from tcp")
    watcher.expect(by(tcp.nick) + rf"PRIVMSG {esc(chan)} :hello from tcp$")

    text = "héllo from the browser ✓"
    ws.call("say", target=chan, text=text)
    tcp.privmsg(ws.nick, chan, text)
    watcher.expect(by(ws.nick) + rf"PRIVMSG {esc(chan)} :{esc(text)}$")

    # Private messages both ways, across the two gateways.
    ws.call("say", target=tcp.nick, text="psst")
    tcp.privmsg(ws.nick, tcp.nick, "psst")
    tcp.call("say", target=ws.nick, text="psst back")
    ws.privmsg(tcp.nick, ws.nick, "psst back")

    # The library got its lines without CR LF (its transport would keep a
    # stray \r at the end of every line).
    from_server = [e["line"] for e in ws.events if e["event"] == "raw" and e["from_server"]]
    assert from_server and not any(line.endswith("\r") for line in from_server), from_server[-5:]

    ws.call("quit", message="closing the tab")
    watcher.expect(by(ws.nick) + r"QUIT :.*closing the tab")
    tcp.expect(lambda e: e["event"] == "raw" and " QUIT " in e["line"] and f":{ws.nick}!" in e["line"],
               what="the websocket user's QUIT")
    ws.expect(lambda e: e["event"] == "close", what="close")


@pytest.mark.parametrize(
    "offered, chosen",
    [
        ((TEXT,), TEXT),
        ((BINARY,), BINARY),
        ((BINARY, TEXT), BINARY),
        ((TEXT, BINARY), TEXT),
        (("chat.example", BINARY), BINARY),
        ((), None),
        (("chat.example",), None),
    ],
)
def test_subprotocols_negotiate_in_the_clients_order(ws_clients, uniq, offered, chosen):
    c = ws_clients(subprotocols=offered)
    assert c.subprotocol == chosen
    c.register(uniq("wsneg"))
    c.ping()
    kinds = {type(m) for m in c.messages}
    # Binary only when negotiated; text otherwise (also without a subprotocol).
    assert kinds == ({bytes} if chosen == BINARY else {str}), kinds
    no_line_endings(c)
    # WebSocket pings are answered by the WebSocket layer.
    assert c.ws.ping().wait(5)
    c.ping()


def test_binary_and_text_clients_chat(ws_clients, clients, uniq):
    chan = "#" + uniq("wsbin")
    b = ws_clients(subprotocols=(BINARY,))
    t = ws_clients(gw=1, subprotocols=(TEXT,))
    tcp = clients.user(uniq("bintcp"))
    b.register(uniq("wsb"))
    t.register(uniq("wst"))
    for c in (b, t, tcp):
        c.join(chan)
    b.send_message(f"PRIVMSG {chan} :naïve ☕".encode())
    t.expect(by(b.nick) + rf"PRIVMSG {esc(chan)} :naïve ☕$")
    tcp.expect(by(b.nick) + rf"PRIVMSG {esc(chan)} :naïve ☕$")
    t.send_message(f"PRIVMSG {chan} :über")
    b.expect(by(t.nick) + rf"PRIVMSG {esc(chan)} :über$")
    tcp.send(f"PRIVMSG {chan} :from tcp")
    b.expect(by(tcp.nick) + rf"PRIVMSG {esc(chan)} :from tcp$")
    t.expect(by(tcp.nick) + rf"PRIVMSG {esc(chan)} :from tcp$")

    # Bytes that are not UTF-8 (possible in binary messages) get the
    # parser's FAIL, as on TCP, and reach nobody.
    b.send_message(f"PRIVMSG {chan} :caf\xe9".encode("latin-1"))
    b.expect(r"^(?:@\S+ )?:\S+ FAIL PRIVMSG INVALID_UTF8 ")
    b.ping()
    t.expect_none(r"PRIVMSG .*caf", within=0.5)
    # A text client can also send binary messages: they are read the same.
    t.send_message(b"PING :binary-from-text")
    t.expect(r" PONG .*binary-from-text$")
    assert all(isinstance(m, bytes) for m in b.messages)
    assert all(isinstance(m, str) for m in t.messages)
    no_line_endings(b)
    no_line_endings(t)


def test_line_endings_and_messages_of_two_lines(ws_clients, uniq):
    c = ws_clients()
    # Registration with CR LF on every message, as a TCP-minded client sends.
    c.send_message("NICK " + (nick := uniq("wscrlf")) + "\r\n")
    c.send_message(f"USER {nick[:10]} 0 * :crlf\r\n")
    c.expect(rf"^(?:@\S+ )?:\S+ 001 {esc(nick)} ", timeout=10)
    c.nick = nick
    c.send_message("PING :lf-only\n")
    c.expect(r" PONG .*lf-only$")
    c.send_message("PING :cr-only\r")
    c.expect(r" PONG .*cr-only$")

    # One message is one line: two lines in one message are refused whole.
    c.send_message("PING :first\r\nPING :second")
    fail = c.expect(r"^(?:@\S+ )?:\S+ FAIL \* INVALID_MESSAGE ")
    assert "one IRC line" in fail.raw
    c.send_message("PRIVMSG x :a\rb")
    c.expect(r"^(?:@\S+ )?:\S+ FAIL \* INVALID_MESSAGE ")
    c.expect_none(r" PONG .*(first|second)", within=0.5)
    c.ping()
    # An empty message is an empty line: ignored.
    c.send_message("")
    c.ping()
    no_line_endings(c)


def test_over_long_messages_get_417_and_the_connection_goes_on(ws_clients, uniq):
    c = ws_clients()
    c.register(uniq("wslong"))
    # Over 510 bytes of body (the CR LF not counted): the parser's 417.
    c.send_message("PRIVMSG #nowhere :" + "a" * 600)
    c.expect(c.num("417"))
    # Over any line (tags included) but under the hard limit: the
    # transport's 417, as TCP.
    c.send_message("PRIVMSG #nowhere :" + "b" * 20_000)
    c.expect(c.num("417"))
    c.send_message(b"@" + b"t" * 9000 + b" PING :x")
    c.expect(c.num("417"))
    c.ping()
    assert not c.closed


def test_a_huge_message_closes_only_that_socket(ws_clients, clients, uniq):
    chan = "#" + uniq("wshuge")
    victim = ws_clients()
    peer = ws_clients(subprotocols=(BINARY,))
    tcp = clients.user(uniq("hugetcp"))
    victim.register(uniq("wsvict"))
    peer.register(uniq("wspeer"))
    for c in (victim, peer, tcp):
        c.join(chan)

    try:
        victim.send_message("PRIVMSG " + chan + " :" + "z" * (1 << 20))
    except Exception:  # noqa: BLE001 - the server may stop reading mid-send
        pass
    victim.expect_closed(timeout=10)
    # 1009 when the close frame gets through; usually the socket is reset
    # first, since the server stopped reading mid-message (1006).
    assert victim.close_code in (1009, 1006), victim.close_code
    tcp.expect(by(victim.nick) + r"QUIT ", timeout=10)
    peer.expect(by(victim.nick) + r"QUIT ", timeout=10)
    tcp.expect_none(r"PRIVMSG .*zzzz", within=0.3)

    # The others go on, and new connections are served.
    peer.send(f"PRIVMSG {chan} :still here")
    tcp.expect(by(peer.nick) + rf"PRIVMSG {esc(chan)} :still here$")
    fresh = ws_clients()
    fresh.register(uniq("wsfresh"))
    fresh.join(chan)
    tcp.send(f"PRIVMSG {chan} :welcome")
    fresh.expect(by(tcp.nick) + rf"PRIVMSG {esc(chan)} :welcome$")
    peer.expect(by(tcp.nick) + rf"PRIVMSG {esc(chan)} :welcome$")


def test_quit_ends_with_error_and_a_normal_close(ws_clients, uniq):
    c = ws_clients()
    c.register(uniq("wsquit"))
    c.send("QUIT :done")
    err = c.expect(r"^ERROR :Closing Link: ")
    assert "done" in err.raw
    c.expect_closed(timeout=10)
    assert c.close_code == 1000


def test_the_client_address_is_the_peers(ws_clients, uniq):
    # No trusted-proxy setting exists: X-Forwarded-For is not believed.
    c = ws_clients(headers={"X-Forwarded-For": "203.0.113.9"})
    c.register(uniq("wsxff"))
    chan = "#" + uniq("wsxff")
    c.send(f"JOIN {chan}")
    join = c.expect(rf"JOIN :?{esc(chan)}")
    assert "@127.0.0.1 " in join.raw and "203.0.113.9" not in join.raw, join.raw


@pytest.fixture
def small_gateway(platform):
    """An extra gateway on the session platform that admits 2 connections."""
    gw = platform.start_gateway({"CHAT__IRC__MAX_CONNECTIONS": "2"})
    yield gw
    gw.terminate()


def test_websocket_connections_count_and_drain_like_tcp(platform, small_gateway, ws_clients, clients, uniq):
    chan = "#" + uniq("wsdrain")
    ws = ws_clients(gw=small_gateway)
    tcp = clients.connect(small_gateway)
    ws.register(uniq("wsadm"))
    tcp.register(uniq("tcpadm"))
    watcher = clients.user(uniq("drainw"))  # on gateway 0
    for c in (ws, tcp, watcher):
        c.join(chan)

    # Both transports count against max_connections.
    third = ws_clients(gw=small_gateway)
    third.expect(r"^ERROR :Closing Link: 127\.0\.0\.1 \(Too many connections\)")
    third.expect_closed(timeout=10)
    fourth = clients.connect(small_gateway)
    fourth.expect(r"^ERROR :Closing Link: 127\.0\.0\.1 \(Too many connections\)")
    fourth.expect_closed(timeout=10)

    # SIGTERM: the WebSocket session ends like the TCP one (ERROR, QUIT
    # published to its rooms), and the gateway exits in time.
    started = time.monotonic()
    problem = small_gateway.terminate(grace=20)
    assert problem is None, problem
    assert time.monotonic() - started < 20
    for c in (ws, tcp):
        c.expect(r"^ERROR :Closing Link: .*Server shutting down")
        c.expect_closed(timeout=5)
    assert ws.close_code == 1000
    watcher.expect(by(ws.nick) + r"QUIT :.*Server shutting down", timeout=10)
    watcher.expect(by(tcp.nick) + r"QUIT :.*Server shutting down", timeout=10)
