"""A client built on the Python `irc` library (jaraco/irc).

The reactor runs in a background thread; every event it produces is kept,
and `wait_for(type, predicate)` finds one, so tests exercise the gateway with
a real client library's parser and registration sequence as well.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import irc.client
from jaraco.stream import buffer


class LenientBuffer(buffer.DecodingLineBuffer):
    """Never dies on bytes that are not UTF-8 (the test would only time out)."""

    errors = "replace"


class LibClient:
    def __init__(
        self,
        host: str,
        port: int,
        nick: str,
        username: str | None = None,
        realname: str = "Lib Client",
        sasl_login: str | None = None,
        password: str | None = None,
    ):
        """With `sasl_login` and `password` the library logs in with SASL
        PLAIN during registration (its own CAP/AUTHENTICATE state machine)."""
        self.nick = nick
        self.reactor = irc.client.Reactor()
        self.events: list[irc.client.Event] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.reactor.add_global_handler("all_events", self._on_event, -10)
        self.conn = self.reactor.server()
        self.conn.buffer_class = LenientBuffer
        self.conn.connect(
            host, port, nick, password=password, username=username or nick[:10], ircname=realname,
            sasl_login=sasl_login,
        )
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"irclib-{nick}")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reactor.process_once(0.05)
            except Exception:  # a dead socket: keep the events we have
                time.sleep(0.05)

    def _on_event(self, connection, event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(
        self,
        etype: str,
        predicate: Callable[[irc.client.Event], bool] | None = None,
        timeout: float = 5.0,
    ) -> irc.client.Event:
        """Returns the first collected event of type `etype` for which
        `predicate` holds (waiting up to `timeout`), and removes it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self.events):
                    if ev.type == etype and (predicate is None or predicate(ev)):
                        return self.events.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{e.type} {e.source} {e.target} {e.arguments}" for e in self.events[-25:]]
                    raise AssertionError(
                        f"irc library client {self.nick}: no {etype!r} event within {timeout}s; last events:\n    "
                        + "\n    ".join(seen)
                    )
                self._cond.wait(left)

    def close(self) -> None:
        try:
            if self.conn.is_connected():
                self.conn.quit("bye")
                time.sleep(0.1)
                self.conn.disconnect()
        except Exception:
            pass
        self._stop.set()
        self._thread.join(timeout=2)
