"""A real IRC client library (`irc-framework` in Node, the library inside
Kiwi IRC; tests/js/irc-agent.mjs) driven from a test, over TCP or over
WebSocket (`/irc` on the gateway's HTTP port):

    a = IrcAgent(plat, "alice", transport="ws")
    a.call("join", channel="#ops")
    a.call("say", target="#ops", text="hi")
    a.expect(lambda e: e["event"] == "privmsg" and e["message"] == "hi")

Every event the agent printed (registered, privmsg, join, close, and every
raw line in both directions) is kept in `events`; `expect` takes the first
one not taken yet that matches.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import threading
import time
from typing import Callable

from .tinodeagent import JS


class IrcAgent:
    def __init__(
        self, plat, nick: str, gw: int = 0, transport: str = "tcp",
        subprotocol: str | None = None, timeout: float = 20,
    ):
        g = plat.gateway(gw)
        port = g.irc_port if transport == "tcp" else g.http_port
        args = ["node", str(JS / "irc-agent.mjs"), transport, "127.0.0.1", str(port), nick]
        if transport == "ws":
            args += ["/irc", subprotocol or "text.ircv3.net"]
        self.nick = nick
        self.name = f"irc-framework-{transport}-{nick}"
        self._log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            args, cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        self.events: list[dict] = []
        self._taken: set[int] = set()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._wait(lambda e: e["event"] in ("registered", "close", "exit"), timeout)
        assert ready and ready["event"] == "registered", (
            f"{self.name} did not register: {ready}\n{self._recent()}\n{self._stderr()}"
        )

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:]

    def _recent(self, n: int = 15) -> str:
        with self._cond:
            return "\n".join(json.dumps(e) for e in self.events[-n:])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            ev = json.loads(line)
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "exit"})
            self._cond.notify_all()

    def _wait(self, pred, timeout: float):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def call(self, op: str, timeout: float = 15, **args):
        """Runs one operation; its value (AssertionError if it failed)."""
        req = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"req": req, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        res = self._wait(lambda e: e["event"] in ("result", "exit") and e.get("req", req) == req, timeout)
        assert res is not None, f"{self.name}: {op} got no result within {timeout}s\n{self._recent()}"
        assert res["event"] == "result", f"{self.name}: agent exited during {op}: {self._stderr()}"
        assert res["ok"], f"{self.name}: {op} failed: {res.get('error')}\n{self._recent()}"
        return res["value"]

    def expect(self, pred: Callable[[dict], bool], timeout: float = 10, what: str = "") -> dict:
        """The first event not taken yet matching `pred`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self.events):
                    if i not in self._taken and pred(ev):
                        self._taken.add(i)
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no event {what} within {timeout}s; last ones:\n{self._recent()}")
                self._cond.wait(left)

    def privmsg(self, nick: str, target: str, text: str, timeout: float = 10) -> dict:
        """Waits for the PRIVMSG `text` from `nick` to `target`."""
        return self.expect(
            lambda e: e["event"] == "privmsg" and e["nick"] == nick and e["target"].lower() == target.lower()
            and e["message"] == text,
            timeout, what=f"PRIVMSG {target} :{text} from {nick}",
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - it is going away anyway
                self.proc.kill()
        for f in (self.proc.stdin, self.proc.stdout, self._log):
            try:
                if f:
                    f.close()
            except Exception:  # noqa: BLE001
                pass
