"""Real terminal IRC clients over TLS (issue 7): irssi and WeeChat (Debian
packages) in tmux, each with its own configuration, connecting to the TLS
port with the platform's self-signed certificate as their CA, logging in
with SASL PLAIN, joining a channel whose recent lines they are replayed,
chatting with a raw client, and reconnecting. What they do is checked from
the other side (a raw client's view: WHOIS 330/671, JOIN, PRIVMSG) and on
their screens.
"""

from __future__ import annotations

import shutil
import time

import pytest

from harness.raw import by, esc
from test_irssi import Tmux

REPLAY = {"CHAT__IRC__JOIN_REPLAY_LINES": "10"}


def account(plat, uniq, base: str) -> tuple[str, str]:
    name, pw = uniq(base), "pw-" + uniq("terminal")
    proc = plat.chatctl("account", "create", name, stdin=pw + "\n")
    assert proc.returncode == 0, proc.stderr
    return name, pw


def wait_online(raw, nick: str, tmux: Tmux, timeout: float = 25) -> None:
    """Until WHOIS shows `nick` logged in (330) over TLS (671)."""
    deadline = time.monotonic() + timeout
    while True:
        raw.send(f"WHOIS {nick}")
        end = raw.expect(raw.num("318"), timeout=10)
        lines = [ln for ln in raw.history if ln.n < end.n and len(ln.params) > 1 and ln.params[1] == nick]
        codes = {ln.command for ln in lines}
        if {"330", "671"} <= codes:
            return
        if time.monotonic() > deadline:
            tmux.keys("/buffer 1", "Enter")  # the server's messages (irssi: window 1)
            time.sleep(0.5)
            raise AssertionError(f"{nick} never came online over TLS (WHOIS: {[ln.raw for ln in lines[-2:]]});"
                                 f" screen:\n{tmux.screen()}")
        time.sleep(0.5)


def history_then_chat(raw, chan: str, nick: str, tmux: Tmux, before: list[str]) -> None:
    raw.expect(by(nick) + rf"JOIN :?{esc(chan)}", timeout=15)
    for text in before:
        tmux.wait_screen(text)
    tmux.keys(f"hello from {nick}", "Enter")
    raw.expect(by(nick) + rf"PRIVMSG {esc(chan)} :hello from {esc(nick)}$", timeout=10)
    raw.send(f"PRIVMSG {chan} :hello {nick}, from a raw socket")
    tmux.wait_screen(f"hello {nick}, from a raw socket")


def scene(make_platform, clients, uniq, base: str, client: str):
    """A platform replaying history on JOIN, an account for the client, and
    a channel where a raw client already said three things."""
    plat = make_platform(gateways=1, env=REPLAY)
    name, pw = account(plat, uniq, base)
    chan = "#" + uniq(base + "tls")
    raw = clients.user(uniq("raw"), plat=plat)
    raw.join(chan)
    before = [f"said before {client} came {i}" for i in range(3)]
    for text in before:
        raw.send(f"PRIVMSG {chan} :{text}")
    time.sleep(0.5)  # stored before the join asks for them
    return plat, name, pw, chan, raw, before


def reconnect_then_quit(raw, chan: str, nick: str, tmux: Tmux) -> None:
    """/reconnect: the same account comes back over TLS, rejoins and
    chats; then /quit."""
    tmux.keys("/reconnect", "Enter")
    raw.expect(by(nick) + r"QUIT ", timeout=15)
    raw.expect(by(nick) + rf"JOIN :?{esc(chan)}", timeout=30)
    wait_online(raw, nick, tmux)
    tmux.keys("back again", "Enter")
    raw.expect(by(nick) + rf"PRIVMSG {esc(chan)} :back again$", timeout=10)
    tmux.keys("/quit done", "Enter")
    raw.expect(by(nick) + r"QUIT :.*done", timeout=10)


@pytest.mark.timeout(120)
def test_irssi_over_tls_with_sasl_history_and_reconnect(make_platform, clients, uniq, tmp_path):
    assert shutil.which("irssi") and shutil.which("tmux"), "irssi/tmux missing (scripts/test.sh installs them)"
    plat, name, pw, chan, raw, before = scene(make_platform, clients, uniq, "ir", "irssi")

    home = tmp_path / "irssi-home"
    home.mkdir()
    cert, _ = plat.tls_files()
    (home / "config").write_text(f"""
servers = (
  {{ address = "localhost"; chatnet = "chat"; port = "{plat.gateways[0].tls_port}"; family = "inet";
     use_tls = "yes"; tls_verify = "yes"; tls_cafile = "{cert}"; autoconnect = "yes"; }}
);
chatnets = {{
  chat = {{ type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "{name}"; sasl_password = "{pw}"; }};
}};
settings = {{
  core = {{ real_name = "irssi over tls"; user_name = "{name}"; nick = "{name}"; }};
  "fe-common/core" = {{ autolog = "no"; }};
}};
""")
    tmux = Tmux(f"chat-irssi-{uniq('t')}")
    tmux.start(f"irssi --home={home}")
    try:
        wait_online(raw, name, tmux)
        tmux.keys(f"/join {chan}", "Enter")
        history_then_chat(raw, chan, name, tmux, before)
        reconnect_then_quit(raw, chan, name, tmux)
    finally:
        tmux.kill()


@pytest.mark.timeout(120)
def test_weechat_over_tls_with_sasl_history_and_reconnect(make_platform, clients, uniq, tmp_path):
    assert shutil.which("weechat") and shutil.which("tmux"), "weechat/tmux missing (scripts/test.sh installs them)"
    plat, name, pw, chan, raw, before = scene(make_platform, clients, uniq, "wc", "weechat")

    home = tmp_path / "weechat-home"
    home.mkdir()
    cert, _ = plat.tls_files()
    port = plat.gateways[0].tls_port
    commands = ";".join([
        # WeeChat 3.8 (Debian 12) says ssl; 4.x says tls: both are set, the
        # unknown ones are only a warning.
        f"/server add chat localhost/{port} -ssl",
        "/set irc.server.chat.ssl on",
        "/set irc.server.chat.ssl_verify on",
        "/set irc.server.chat.tls on",
        "/set irc.server.chat.tls_verify on",
        "/set irc.server.chat.ipv6 off",
        f"/set weechat.network.gnutls_ca_user {cert}",
        "/set irc.server.chat.sasl_mechanism plain",
        f"/set irc.server.chat.sasl_username {name}",
        f"/set irc.server.chat.sasl_password {pw}",
        f"/set irc.server.chat.nicks {name}",
        f"/set irc.server.chat.username {name}",
        f"/set irc.server.chat.autojoin {chan}",
        "/connect chat",
    ])
    tmux = Tmux(f"chat-weechat-{uniq('t')}")
    tmux.start(f"weechat --dir {home} -r '{commands}'")
    try:
        wait_online(raw, name, tmux)
        history_then_chat(raw, chan, name, tmux, before)
        reconnect_then_quit(raw, chan, name, tmux)
    finally:
        tmux.kill()
