"""A real XMPP client (`@xmpp/client` in Node, tests/js/xmpp-agent.mjs)
driven from a test: it logs in over WebSocket and binds a resource; the
test writes stanzas and waits for received ones, parsed with ElementTree.

    a = XmppAgent(url, "alice", "password")
    a.send("<presence to='ops@conference.localhost/alice'/>")
    p = a.expect(lambda s: s.tag == C + "presence" and "status" in s.codes())
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

JS = Path(__file__).resolve().parent.parent / "js"
C = "{jabber:client}"
MUC_USER = "{http://jabber.org/protocol/muc#user}"
SID = "{urn:xmpp:sid:0}"
DELAY = "{urn:xmpp:delay}"
MAM = "{urn:xmpp:mam:2}"
RSM = "{http://jabber.org/protocol/rsm}"
FORWARD = "{urn:xmpp:forward:0}"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


class Stanza:
    """One received stanza: its element and its text."""

    def __init__(self, raw: str):
        self.raw = raw
        self.el = ET.fromstring(raw)

    @property
    def tag(self) -> str:
        return self.el.tag

    def get(self, attr: str, default: str | None = None) -> str | None:
        return self.el.get(attr, default)

    def find(self, path: str):
        return self.el.find(path)

    def codes(self) -> set[str]:
        """MUC status codes."""
        return {s.get("code", "") for s in self.el.iter(MUC_USER + "status")}

    def body(self) -> str | None:
        b = self.el.find(C + "body")
        return None if b is None else (b.text or "")

    def error(self) -> str | None:
        """The defined condition of a stanza error."""
        err = self.el.find(C + "error")
        if err is None:
            return None
        for child in err:
            if child.tag.startswith(STANZAS) and not child.tag.endswith("}text"):
                return child.tag[len(STANZAS):]
        return ""

    def __repr__(self) -> str:
        return self.raw


class XmppAgent:
    def __init__(self, url: str, user: str, password: str, resource: str | None = None, timeout: float = 20):
        args = ["node", str(JS / "xmpp-agent.mjs"), url, user, password]
        if resource:
            args.append(resource)
        self.proc = subprocess.Popen(
            args, cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.stanzas: list[Stanza] = []
        self.events: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        online = self._wait_event(lambda e: e["event"] in ("online", "error", "offline"), timeout)
        assert online and online["event"] == "online", f"xmpp agent {user} did not come online: {online} {self._stderr()}"
        self.jid = online["jid"]

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        return (self.proc.stderr.read() if self.proc.stderr else "")[-2000:]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            ev = json.loads(line)
            with self._cond:
                if ev["event"] == "stanza":
                    self.stanzas.append(Stanza(ev["xml"]))
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

    def send(self, xml: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"send": xml}) + "\n")
        self.proc.stdin.flush()

    def expect(self, pred: Callable[[Stanza], bool], timeout: float = 10, what: str = "") -> Stanza:
        """The first stanza not taken yet (in arrival order) matching `pred`;
        stanzas before it stay available to later calls."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, s in enumerate(self.stanzas):
                    if i in self._used():
                        continue
                    if pred(s):
                        self._mark(i)
                        return s
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = "\n".join(s.raw for s in self.stanzas[-8:])
                    raise AssertionError(f"{self.jid}: no stanza {what} within {timeout}s; last ones:\n{recent}")
                self._cond.wait(left)

    def expect_none(self, pred: Callable[[Stanza], bool], within: float = 1.0) -> None:
        time.sleep(within)
        with self._cond:
            for i, s in enumerate(self.stanzas):
                if i not in self._used() and pred(s):
                    raise AssertionError(f"{self.jid}: unexpected stanza {s.raw}")

    def all(self, pred: Callable[[Stanza], bool]) -> list[Stanza]:
        with self._cond:
            return [s for s in self.stanzas if pred(s)]

    def _used(self) -> set[int]:
        return self.__dict__.setdefault("_used_set", set())

    def _mark(self, i: int) -> None:
        self._used().add(i)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - it is going away anyway
                self.proc.kill()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if f:
                    f.close()
            except Exception:  # noqa: BLE001
                pass


def is_presence(frm: str | None = None, type_: str | None = None):
    def pred(s: Stanza) -> bool:
        return s.tag == C + "presence" and (frm is None or s.get("from") == frm) and s.get("type") == type_
    return pred


def is_message(frm: str | None = None, type_: str | None = None, body: str | None = None):
    def pred(s: Stanza) -> bool:
        return (
            s.tag == C + "message"
            and (frm is None or s.get("from") == frm)
            and (type_ is None or s.get("type") == type_)
            and (body is None or s.body() == body)
        )
    return pred


def ws_url(plat, gw: int = 0) -> str:
    """The XMPP-over-WebSocket address of a platform's gateway `gw`."""
    return f"ws://127.0.0.1:{plat.gateway(gw).http_port}/xmpp"


def create_account(plat, uniq, base: str) -> tuple[str, str]:
    """A fresh account (made with chatctl): its name and password."""
    name, pw = uniq(base), "pw-" + secrets.token_urlsafe(10)
    proc = plat.chatctl("account", "create", name, stdin=pw + "\n")
    assert proc.returncode == 0, f"chatctl: {proc.returncode} {proc.stdout} {proc.stderr}"
    return name, pw
