"""A real Tinode client (`tinode-sdk` in Node, tests/js/tinode-agent.mjs)
driven from a test: each call is one SDK operation answered by its
result; every raw server message the SDK received is kept for checks.

    a = TinodeAgent(plat, transport="ws")
    a.call("create", login="alice", password="…")
    grp = a.call("newGroup", fn="Ops")["topic"]
    a.expect(lambda p: "data" in p and p["data"]["topic"] == grp)
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

JS = Path(__file__).resolve().parent.parent / "js"


class TinodeError(AssertionError):
    def __init__(self, op: str, result: dict):
        super().__init__(f"{op} failed: {result.get('code')} {result.get('error')}")
        self.code = result.get("code")
        self.error = result.get("error")


class TinodeAgent:
    def __init__(self, plat, gw: int = 0, transport: str = "ws", timeout: float = 20):
        host = f"127.0.0.1:{plat.gateway(gw).http_port}"
        self.name = f"tinode-{transport}"
        # stderr to a file, not a pipe: with TINODE_AGENT_LOG=1 the SDK logs
        # every packet there, which would fill a pipe nobody reads.
        self._log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            ["node", str(JS / "tinode-agent.mjs"), host, transport],
            cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        self.packets: list[dict] = []
        self.events: list[dict] = []
        self._taken: set[int] = set()
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._wait_event(lambda e: e["event"] in ("ready", "error", "exit"), timeout)
        assert ready and ready["event"] == "ready", f"tinode agent did not connect: {ready} {self._stderr()}"

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            ev = json.loads(line)
            with self._cond:
                if ev["event"] == "raw" and "pkt" in ev:
                    self.packets.append(ev["pkt"])
                else:
                    self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "exit"})
            self._cond.notify_all()

    def _wait_event(self, pred, timeout: float):
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
        """Runs one SDK operation; its value, or TinodeError with the code."""
        req = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"req": req, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        res = self._wait_event(lambda e: e["event"] in ("result", "exit") and e.get("req", req) == req, timeout)
        assert res is not None, f"{self.name}: {op} got no result within {timeout}s"
        assert res["event"] == "result", f"{self.name}: agent exited during {op}: {self._stderr()}"
        if not res["ok"]:
            raise TinodeError(op, res)
        return res["value"]

    def expect(self, pred: Callable[[dict], bool], timeout: float = 10, what: str = "") -> dict:
        """The first raw server message not taken yet matching `pred`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, p in enumerate(self.packets):
                    if i not in self._taken and pred(p):
                        self._taken.add(i)
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = "\n".join(json.dumps(p) for p in self.packets[-8:])
                    raise AssertionError(f"{self.name}: no packet {what} within {timeout}s; last ones:\n{recent}")
                self._cond.wait(left)

    def expect_none(self, pred: Callable[[dict], bool], within: float = 1.0) -> None:
        time.sleep(within)
        with self._cond:
            for i, p in enumerate(self.packets):
                if i not in self._taken and pred(p):
                    raise AssertionError(f"{self.name}: unexpected packet {p}")

    def all(self, pred: Callable[[dict], bool]) -> list[dict]:
        with self._cond:
            return [p for p in self.packets if pred(p)]

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


def is_data(topic: str, seq: int | None = None):
    def pred(p: dict) -> bool:
        d = p.get("data")
        return bool(d) and d.get("topic") == topic and (seq is None or d.get("seq") == seq)
    return pred


def is_ctrl(code: int | None = None, id_: str | None = None, topic: str | None = None):
    def pred(p: dict) -> bool:
        c = p.get("ctrl")
        return (
            bool(c)
            and (code is None or c.get("code") == code)
            and (id_ is None or c.get("id") == id_)
            and (topic is None or c.get("topic") == topic)
        )
    return pred


def is_pres(topic: str, what: str, src: str | None = None):
    def pred(p: dict) -> bool:
        pr = p.get("pres")
        return bool(pr) and pr.get("topic") == topic and pr.get("what") == what and (src is None or pr.get("src") == src)
    return pred


def is_info(topic: str, what: str, src: str | None = None):
    def pred(p: dict) -> bool:
        i = p.get("info")
        return bool(i) and i.get("topic") == topic and i.get("what") == what and (src is None or i.get("from") == src)
    return pred
