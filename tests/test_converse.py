"""Converse.js, the real XMPP web client, against the gateway.

Converse (node_modules/converse.js, pinned in tests/js/package.json) runs
in headless Chromium (Debian's /usr/bin/chromium, driven by puppeteer-core
in tests/js/converse-check.mjs), served from a local page: it logs in over
XMPP-over-WebSocket (RFC 7395, the gateway's `/xmpp`) with an account made
by chatctl, joins `room@conference.localhost` (IRC `#room`) on its own
(auto_join_rooms), shows a message an IRC client sent to `#room`, and what
is typed into its message box reaches the IRC client.

The test saves a screenshot of the browser and the browser's log (console,
page errors, every WebSocket frame both ways) under .run/logs/ and prints
both paths.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.raw import esc

JS = Path(__file__).resolve().parent / "js"
LOGS = Path(__file__).resolve().parents[1] / ".run" / "logs"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ROOM = "room"
MUC = "conference.localhost"
CAPS = ("echo-message", "message-tags", "server-time")


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


class Converse:
    """tests/js/converse-check.mjs: Converse.js in headless Chromium,
    logged in as `jid` with `room` auto-joined; commands are answered one
    JSON line each. The browser's log goes to `log`."""

    def __init__(self, websocket_url: str, jid: str, password: str, room: str, log: Path, timeout: float = 30):
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        config = {"websocket_url": websocket_url, "jid": jid, "password": password, "room": room,
                  "chromium": CHROMIUM}
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen(
            ["node", str(JS / "converse-check.mjs"), json.dumps(config)],
            cwd=JS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file, text=True,
        )
        self._lines: list[dict] = []
        self._cond = threading.Condition()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._wait(lambda m: m.get("event") in ("ready", "error", "exit"), timeout)
        if not (ready and ready["event"] == "ready"):
            self.close()
            raise AssertionError(f"converse-check.mjs did not load the page: {ready}\nbrowser log {log}:\n{tail(log)}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            with self._cond:
                self._lines.append(msg)
                self._cond.notify_all()
        with self._cond:
            self._lines.append({"event": "exit", "code": self.proc.wait()})
            self._cond.notify_all()

    def _wait(self, pred, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self._lines:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def call(self, cmd: str, timeout: float = 20, **args) -> dict:
        """Runs one command; fails the test with Converse's state and the
        browser log's tail when it fails, times out or the browser died."""
        self._next_id += 1
        ident = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": ident, "cmd": cmd, "timeout": timeout, **args}) + "\n")
        self.proc.stdin.flush()
        reply = self._wait(lambda m: m.get("id") == ident or m.get("event") in ("error", "exit"), timeout + 10)
        if reply is None or reply.get("id") != ident or not reply.get("ok"):
            state = (reply or {}).get("state")
            raise AssertionError(
                f"converse: {cmd} {args} failed: {reply or 'no answer'}\n"
                f"converse state: {json.dumps(state, indent=1) if state else '-'}\n"
                f"browser log {self.log} (tail):\n{tail(self.log)}"
            )
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"id": 0, "cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - it is going away anyway
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except Exception:  # noqa: BLE001
                pass
        self._log_file.close()


def account(plat, uniq, base: str) -> tuple[str, str]:
    name, pw = uniq(base), "pw-" + secrets.token_urlsafe(10)
    proc = plat.chatctl("account", "create", name, stdin=pw + "\n")
    assert proc.returncode == 0, f"chatctl: {proc.returncode} {proc.stdout} {proc.stderr}"
    return name, pw


@pytest.mark.timeout(90)
def test_converse_in_a_room_with_irc(platform, clients, uniq):
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: scripts/test.sh installs Debian's `chromium` (apt-get install chromium)"
    )
    assert shutil.which("node"), "no node: scripts/test.sh installs nodejs"
    assert (JS / "node_modules" / "converse.js" / "dist" / "converse.min.js").exists(), (
        "tests/js/node_modules lacks converse.js: cd tests/js && npm ci"
    )
    chan = "#" + ROOM
    name, pw = account(platform, uniq, "cv")
    irc = clients.user(uniq("irc"), gw=0, caps=CAPS)
    irc.join(chan)

    gw = platform.gateway(0)
    log = LOGS / "converse-browser.log"
    shot = LOGS / "converse-muc.png"
    print(f"\nconverse browser log: {log}")
    started = time.monotonic()
    browser = Converse(f"ws://127.0.0.1:{gw.http_port}/xmpp", f"{name}@localhost", pw, f"{ROOM}@{MUC}", log)
    try:
        browser.call("wait_joined", timeout=30)
        joined = time.monotonic() - started
        # IRC sees the Converse user join the channel under its account name.
        irc.expect(rf"^(?:@\S+ )?:{re.escape(name)}!\S+ JOIN {esc(chan)}", timeout=10)

        # IRC → Converse.
        from_irc = f"hello from irc {secrets.token_hex(4)}"
        irc.send(f"PRIVMSG {chan} :{from_irc}")
        shown = browser.call("wait_text", text=from_irc, timeout=15)
        assert shown["from"] == f"{ROOM}@{MUC}/{irc.nick}", shown
        assert shown["text"] == from_irc, shown

        # Converse → IRC, and back in Converse's own view (the reflection).
        from_converse = f"hello from converse {secrets.token_hex(4)}"
        browser.call("send", text=from_converse)
        irc.expect(rf"^(?:@\S+ )?:{re.escape(name)}!\S+ PRIVMSG {esc(chan)} :{re.escape(from_converse)}$",
                   timeout=15)
        mine = browser.call("wait_text", text=from_converse, timeout=15)
        assert mine["from"] == f"{ROOM}@{MUC}/{name}", mine
        print(f"converse: browser up, logged in and joined in {joined:.1f}s; both directions checked after "
              f"{time.monotonic() - started:.1f}s")
    finally:
        try:
            browser.call("screenshot", path=str(shot), timeout=15)
            print(f"converse screenshot: {shot}")
        except AssertionError as e:
            print(f"converse screenshot failed: {e}")
        browser.close()
