"""A real terminal IRC client: irssi (Debian package) in a tmux session,
typed into with send-keys and read with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from harness.raw import by, esc


class Tmux:
    """A private tmux server (own socket) running one program."""

    def __init__(self, name: str):
        self.socket = name
        self.session = name

    def run(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-s", self.session, "-x", "200", "-y", "50", command)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session, check=False)

    def wait_screen(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on irssi's screen after {timeout}s; screen:\n{screen}")
            time.sleep(0.3)

    def kill(self) -> None:
        self.run("kill-server", check=False)


@pytest.mark.timeout(90)
def test_irssi_joins_and_chats(platform, clients, uniq, tmp_path):
    assert shutil.which("irssi"), "irssi is not installed (scripts/test.sh installs the Debian package)"
    assert shutil.which("tmux"), "tmux is not installed"
    chan = "#" + uniq("irssi")
    raw = clients.user(uniq("raw"), gw=1)
    raw.join(chan)

    nick = uniq("irs")
    home = tmp_path / "irssi-home"
    home.mkdir()
    port = platform.gateways[0].irc_port
    tmux = Tmux(f"chat-test-{uniq('t')}")
    tmux.start(f"irssi --home={home} -c 127.0.0.1 -p {port} -n {nick}")
    try:
        # registered once its nick is online (ISON goes through the cluster state)
        deadline = time.monotonic() + 20
        while True:
            raw.send(f"ISON {nick}")
            if nick in (raw.expect(raw.num("303")).text or "").split():
                break
            assert time.monotonic() < deadline, f"irssi never registered; screen:\n{tmux.screen()}"
            time.sleep(0.5)

        tmux.keys(f"/join {chan}", "Enter")
        raw.expect(by(nick) + rf"JOIN :?{esc(chan)}$", timeout=15)
        tmux.wait_screen(raw.nick)  # the names list shows the raw client

        tmux.keys("hello from irssi", "Enter")
        raw.expect(by(nick) + rf"PRIVMSG {esc(chan)} :hello from irssi$", timeout=10)

        raw.send(f"PRIVMSG {chan} :hello irssi, from a raw socket")
        tmux.wait_screen("hello irssi, from a raw socket")

        tmux.keys("/quit leaving now", "Enter")
        raw.expect(by(nick) + r"QUIT :.*leaving now", timeout=10)
    finally:
        tmux.kill()
