"""A raw-socket IRC client for tests.

It sends exactly the bytes a test gives it and keeps every line the server
sends in an inbox. `expect(regex)` takes the FIRST unconsumed line matching
and leaves the others for later expectations, so a test can look for lines
in any order and still check their relative order with `Line.n`.
Server PINGs are answered automatically (unless `auto_pong=False`).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from typing import Iterable

from .ircline import Line, parse

DEFAULT_TIMEOUT = 5.0


class RawClient:
    def __init__(self, host: str, port: int, *, auto_pong: bool = True, label: str = "",
                 tls: "ssl.SSLContext | None" = None):
        self.host, self.port = host, port
        self._init_state(label or f"{host}:{port}", auto_pong)
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tls = tls is not None
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
            # An SSL socket must not be read and written by two threads at
            # once: the reader polls, holding the send lock (see _recv).
            self.sock.settimeout(0.05)
        else:
            self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name=f"raw-{self.label}")
        self._reader.start()

    def _init_state(self, label: str, auto_pong: bool) -> None:
        self.label = label
        self.auto_pong = auto_pong
        self.nick: str | None = None
        self.caps: list[str] = []
        self.burst: list[Line] = []  # registration burst (001 … end of MOTD)
        self.history: list[Line] = []  # every line ever received
        self._inbox: list[Line] = []
        self._cond = threading.Condition()
        self._closed = False
        self._count = 0
        self._send_lock = threading.Lock()

    # ------------------------------------------------------------------ I/O

    def _read_loop(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self._recv()
                if chunk is None:
                    continue
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    self._received(raw.rstrip(b"\r").decode("utf-8", errors="replace"))
        except OSError:
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _recv(self) -> bytes | None:
        """The next bytes (b"" at end of stream), or None to poll again."""
        if not self._tls:
            return self.sock.recv(65536)
        with self._send_lock:
            try:
                return self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                pass
        time.sleep(0.002)  # lets a waiting sender take the lock
        return None

    def _received(self, raw: str) -> None:
        with self._cond:
            self._count += 1
            line = parse(raw, self._count)
            self.history.append(line)
            self._inbox.append(line)
            self._cond.notify_all()
        if line.command == "PING" and self.auto_pong:
            token = line.params[-1] if line.params else ""
            try:
                self.send(f"PONG :{token}")
            except OSError:
                pass

    def send(self, line: str) -> None:
        """Sends one line; CR LF is appended."""
        self.send_raw((line + "\r\n").encode("utf-8"))

    def send_raw(self, data: bytes) -> None:
        """Sends bytes exactly as given."""
        with self._send_lock:
            self.sock.sendall(data)

    def close(self) -> None:
        if getattr(self, "_tls", False):
            # Not while the reader is inside recv: its fd number, once
            # closed, may be the next connection's, whose bytes it would take.
            with self._send_lock:
                self._close_socket()
            return
        self._close_socket()

    def _close_socket(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    # ---------------------------------------------------------- expectations

    def _describe(self) -> str:
        with self._cond:
            pending = [ln.raw for ln in self._inbox[-25:]]
            closed = self._closed
        state = "connection CLOSED by server" if closed else "connection open"
        shown = "\n    ".join(pending) if pending else "(none)"
        return f"[{self.label} nick={self.nick}] {state}; unconsumed lines (last 25):\n    {shown}"

    def _take(self, rx: re.Pattern) -> Line | None:
        for i, line in enumerate(self._inbox):
            if rx.search(line.raw):
                return self._inbox.pop(i)
        return None

    def expect(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> Line:
        """Waits for (and consumes) the first unconsumed line matching `pattern`
        (a regex searched in the raw line, tags included)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._take(rx)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            # one last look: the reader may have delivered just before closing
            found = self._take(rx)
            if found is not None:
                return found
        raise AssertionError(f"expected a line matching {pattern!r} within {timeout}s; {self._describe()}")

    def expect_none(self, pattern: str, within: float = 1.0) -> None:
        """Fails if a line matching `pattern` is (or arrives) in the inbox
        within `within` seconds. Consumes nothing."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + within
        with self._cond:
            while True:
                for line in self._inbox:
                    if rx.search(line.raw):
                        raise AssertionError(
                            f"unexpected line matching {pattern!r}: {line.raw!r}; {self._describe()}"
                        )
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return
                self._cond.wait(left)

    def collect(self, pattern: str, count: int, timeout: float) -> list[Line]:
        """Consumes matching lines, in arrival order, until `count` of them
        arrived or `timeout` passed; returns what it got (maybe fewer)."""
        rx = re.compile(pattern)
        got: list[Line] = []
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                keep = []
                for line in self._inbox:
                    if len(got) < count and rx.search(line.raw):
                        got.append(line)
                    else:
                        keep.append(line)
                self._inbox = keep
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0 or self._closed:
                    return got
                self._cond.wait(left)

    def expect_closed(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Waits until the server closes the connection."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"connection not closed within {timeout}s; {self._describe()}")
                self._cond.wait(left)

    def drain(self) -> list[Line]:
        """Drops (and returns) every unconsumed line."""
        with self._cond:
            lines, self._inbox = self._inbox, []
        return lines

    def pending(self) -> list[Line]:
        with self._cond:
            return list(self._inbox)

    # ------------------------------------------------------------- protocol

    def num(self, code: str) -> str:
        """Regex prefix of numeric `code` addressed to this client."""
        target = re.escape(self.nick) if self.nick else r"\S+"
        return rf"^(?:@\S+ )?:\S+ {code} {target}(?: |$)"

    def ping(self, token: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Line:
        """Round trip: PING and wait for the matching PONG (proves the
        connection is alive and every earlier line was processed)."""
        token = token or f"rt{time.monotonic_ns()}"
        self.send(f"PING :{token}")
        return self.expect(rf"^(?:@\S+ )?(?::\S+ )?PONG .*{re.escape(token)}$", timeout)

    def cap_ls(self, timeout: float = DEFAULT_TIMEOUT) -> set[str]:
        """`CAP LS 302`; returns the advertised capability names (values cut)."""
        self.send("CAP LS 302")
        caps: set[str] = set()
        while True:
            line = self.expect(r"^(?:@\S+ )?:\S+ CAP \S+ LS ", timeout)
            caps.update(word.split("=", 1)[0] for word in (line.text or "").split())
            # `CAP * LS * :…` announces a continuation line
            if not (len(line.params) >= 4 and line.params[2] == "*"):
                return caps

    def register(
        self,
        nick: str,
        caps: Iterable[str] = (),
        user: str | None = None,
        realname: str | None = None,
        timeout: float = 10.0,
    ) -> Line:
        """CAP LS 302 / CAP REQ / NICK / USER / CAP END, then waits for 001
        and the end of the MOTD (376 or 422). The burst is kept in `burst`
        and removed from the inbox. Returns the 001 line."""
        caps = list(caps)
        self.cap_ls(timeout)
        if caps:
            self.send("CAP REQ :" + " ".join(caps))
            self.expect(r"^(?:@\S+ )?:\S+ CAP \S+ ACK ", timeout)
        self.send(f"NICK {nick}")
        self.send(f"USER {user or nick[:10]} 0 * :{realname or 'Test ' + nick}")
        self.send("CAP END")
        welcome = self.expect(rf"^(?:@\S+ )?:\S+ 001 {re.escape(nick)} ", timeout)
        end = self.expect(rf"^(?:@\S+ )?:\S+ (?:376|422) {re.escape(nick)} ", timeout)
        self.nick = nick
        self.caps = caps
        with self._cond:
            start = welcome.n
            self.burst = [ln for ln in self.history if start <= ln.n <= end.n]
            self._inbox = [ln for ln in self._inbox if ln.n > end.n or ln.n < start]
        return welcome

    def join(self, channel: str, key: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Line:
        """JOIN and wait for the end of NAMES (366): the join is complete."""
        self.send(f"JOIN {channel}" + (f" {key}" if key else ""))
        # (with extended-join the line goes on: `<account or *> :<realname>`)
        self.expect(rf"^(?:@\S+ )?:{re.escape(self.nick or '')}!\S+ JOIN :?{re.escape(channel)}(?: \S+ :.*)?$", timeout)
        return self.expect(self.num("366") + rf"{re.escape(channel)} ", timeout)


    def names(self, channel: str, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        """NAMES <channel> → the entries (with prefixes) of the 353 lines."""
        pat353 = self.num("353") + r"[=*@] " + re.escape(channel) + " "
        pat366 = self.num("366") + re.escape(channel) + " "
        self.collect(pat353, 10**6, 0)  # drop answers to earlier JOINs/NAMES
        self.collect(pat366, 10**6, 0)
        self.send(f"NAMES {channel}")
        end = self.expect(pat366, timeout)
        lines = self.collect(pat353, 10**6, 0)
        return [entry for line in lines if line.n < end.n for entry in (line.text or "").split()]

    def list_channels(self, timeout: float = DEFAULT_TIMEOUT, args: str = "") -> dict[str, tuple[int, str]]:
        """LIST [args] → {channel: (user count, text)} from the 322 lines before 323."""
        self.collect(self.num("322"), 10**6, 0)
        self.collect(self.num("323"), 10**6, 0)
        self.send(f"LIST {args}".strip())
        end = self.expect(self.num("323"), timeout)
        got = {}
        for line in self.collect(self.num("322"), 10**6, 0):
            if line.n < end.n and len(line.params) >= 4 and line.params[2].isdigit():
                got[line.params[1]] = (int(line.params[2]), line.params[3])
        return got


class WsRawClient(RawClient):
    """A RawClient over IRC-over-WebSocket (`/irc`): one WebSocket message
    per line, no CR LF either way. `send` sends a text message, or a binary
    one when `binary.ircv3.net` was negotiated; `send_message` sends exactly
    the str (text) or bytes (binary) it is given. Every message received is
    kept in `messages` as it arrived (str or bytes), and `close_code` is the
    server's close status once the connection ended."""

    def __init__(
        self, url: str, *, subprotocols: Iterable[str] | None = ("text.ircv3.net",),
        headers: dict[str, str] | None = None, auto_pong: bool = True, label: str = "",
    ):
        from websockets.sync.client import connect

        self.url = url
        self._init_state(label or url, auto_pong)
        self.messages: list[str | bytes] = []
        self.close_code: int | None = None
        # Entered like a context manager (closed by `close`): websockets 17
        # warns about a connection used without one.
        self.ws = connect(
            url, subprotocols=list(subprotocols) if subprotocols else None,
            additional_headers=headers, open_timeout=10, max_size=None, compression=None,
        ).__enter__()
        self.subprotocol = self.ws.subprotocol
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name=f"ws-{self.label}")
        self._reader.start()

    def _read_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                msg = self.ws.recv()
                self.messages.append(msg)
                text = msg.decode("utf-8", errors="replace") if isinstance(msg, bytes) else msg
                self._received(text)
        except (ConnectionClosed, OSError):
            pass
        finally:
            with self._cond:
                self.close_code = self.ws.close_code
                self._closed = True
                self._cond.notify_all()

    def send(self, line: str) -> None:
        """Sends one line as one message (no CR LF)."""
        self.send_message(line.encode("utf-8") if self.subprotocol == "binary.ircv3.net" else line)

    def send_raw(self, data: bytes) -> None:
        """Sends bytes exactly as given, as one message (binary in binary
        mode, else text)."""
        self.send_message(data if self.subprotocol == "binary.ircv3.net" else data.decode("utf-8"))

    def send_message(self, data: str | bytes) -> None:
        with self._send_lock:
            self.ws.send(data)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - already gone
            pass


def by(nick: str) -> str:
    """Regex prefix of a line whose source is the user `nick` (any tags)."""
    return rf"^(?:@\S+ )?:{re.escape(nick)}!\S+@\S+ "


def esc(text: str) -> str:
    return re.escape(text)
