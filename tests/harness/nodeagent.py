"""What the Node-driven client agents (tests/js/*-agent.mjs) share: the
process with its stderr in a file, a reader thread that keeps every JSON
line the agent prints, waiting for one, request/answer by `req` id, and
closing. Subclasses say where a line goes (`_keep`) and what a request's
failure means (`call`)."""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "js"


class NodeAgent:
    def __init__(self, name: str, args: list[str]):
        self.name = name
        # stderr to a file, not a pipe: an agent may log a lot there (the
        # SDK's packets with TINODE_AGENT_LOG=1), which would fill a pipe
        # nobody reads.
        self._log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            ["node", *args], cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True,
        )
        self.events: list[dict] = []
        self._taken: set[int] = set()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _keep(self, ev: dict) -> None:
        """Stores one line the agent printed (called holding the lock)."""
        self.events.append(ev)

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
                self._keep(ev)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "exit"})
            self._cond.notify_all()

    def _wait_event(self, pred, timeout: float):
        """The first event matching `pred` (taken or not), or None."""
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

    def _take(self, items: list, pred, timeout: float, what: str, recent) -> dict:
        """The first item of `items` (events or packets, filled by the
        reader) not taken yet that matches `pred`; items before it stay
        available. Fails with `what` and `recent()` after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, item in enumerate(items):
                    if i not in self._taken and pred(item):
                        self._taken.add(i)
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no {what} within {timeout}s; last ones:\n{recent()}")
                self._cond.wait(left)

    def _request(self, op: str, timeout: float, **args) -> dict:
        """Sends one operation; its result event (asserts it came)."""
        req = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"req": req, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        res = self._wait_event(lambda e: e["event"] in ("result", "exit") and e.get("req", req) == req, timeout)
        assert res is not None, f"{self.name}: {op} got no result within {timeout}s\n{self._recent()}"
        assert res["event"] == "result", f"{self.name}: agent exited during {op}: {self._stderr()}"
        return res

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
