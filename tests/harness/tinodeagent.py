"""A real Tinode client (`tinode-sdk` in Node, tests/js/tinode-agent.mjs)
driven from a test: each call is one SDK operation answered by its
result; every raw server message the SDK received is kept for checks.

    a = TinodeAgent(plat, transport="ws")
    a.call("create", login="alice", password="…")
    grp = a.call("newGroup", fn="Ops")["topic"]
    a.expect(lambda p: "data" in p and p["data"]["topic"] == grp)
"""

from __future__ import annotations

import json
import time
from typing import Callable

from .nodeagent import JS, NodeAgent


class TinodeError(AssertionError):
    def __init__(self, op: str, result: dict):
        super().__init__(f"{op} failed: {result.get('code')} {result.get('error')}")
        self.code = result.get("code")
        self.error = result.get("error")


class TinodeAgent(NodeAgent):
    def __init__(self, plat, gw: int = 0, transport: str = "ws", timeout: float = 20):
        host = f"127.0.0.1:{plat.gateway(gw).http_port}"
        self.packets: list[dict] = []
        super().__init__(f"tinode-{transport}", [str(JS / "tinode-agent.mjs"), host, transport])
        ready = self._wait_event(lambda e: e["event"] in ("ready", "error", "exit"), timeout)
        assert ready and ready["event"] == "ready", f"tinode agent did not connect: {ready} {self._stderr()}"

    def _keep(self, ev: dict) -> None:
        # Raw server messages are what tests check; the rest are the agent's.
        if ev["event"] == "raw" and "pkt" in ev:
            self.packets.append(ev["pkt"])
        else:
            self.events.append(ev)

    def call(self, op: str, timeout: float = 15, **args):
        """Runs one SDK operation; its value, or TinodeError with the code."""
        res = self._request(op, timeout, **args)
        if not res["ok"]:
            raise TinodeError(op, res)
        return res["value"]

    def expect(self, pred: Callable[[dict], bool], timeout: float = 10, what: str = "") -> dict:
        """The first raw server message not taken yet matching `pred`."""
        def recent() -> str:
            return "\n".join(json.dumps(p) for p in self.packets[-8:])

        return self._take(self.packets, pred, timeout, f"packet {what}", recent)

    def expect_none(self, pred: Callable[[dict], bool], within: float = 1.0) -> None:
        time.sleep(within)
        with self._cond:
            for i, p in enumerate(self.packets):
                if i not in self._taken and pred(p):
                    raise AssertionError(f"{self.name}: unexpected packet {p}")

    def all(self, pred: Callable[[dict], bool]) -> list[dict]:
        with self._cond:
            return [p for p in self.packets if pred(p)]


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
