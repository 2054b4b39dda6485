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

from typing import Callable

from .nodeagent import JS, NodeAgent


class IrcAgent(NodeAgent):
    def __init__(
        self, plat, nick: str, gw: int = 0, transport: str = "tcp",
        subprotocol: str | None = None, timeout: float = 20,
    ):
        g = plat.gateway(gw)
        port = g.irc_port if transport == "tcp" else g.http_port
        args = [str(JS / "irc-agent.mjs"), transport, "127.0.0.1", str(port), nick]
        if transport == "ws":
            args += ["/irc", subprotocol or "text.ircv3.net"]
        self.nick = nick
        super().__init__(f"irc-framework-{transport}-{nick}", args)
        ready = self._wait_event(lambda e: e["event"] in ("registered", "close", "exit"), timeout)
        assert ready and ready["event"] == "registered", (
            f"{self.name} did not register: {ready}\n{self._recent()}\n{self._stderr()}"
        )

    def call(self, op: str, timeout: float = 15, **args):
        """Runs one operation; its value (AssertionError if it failed)."""
        res = self._request(op, timeout, **args)
        assert res["ok"], f"{self.name}: {op} failed: {res.get('error')}\n{self._recent()}"
        return res["value"]

    def expect(self, pred: Callable[[dict], bool], timeout: float = 10, what: str = "") -> dict:
        """The first event not taken yet matching `pred`."""
        return self._take(self.events, pred, timeout, f"event {what}", self._recent)

    def privmsg(self, nick: str, target: str, text: str, timeout: float = 10) -> dict:
        """Waits for the PRIVMSG `text` from `nick` to `target`."""
        return self.expect(
            lambda e: e["event"] == "privmsg" and e["nick"] == nick and e["target"].lower() == target.lower()
            and e["message"] == text,
            timeout, what=f"PRIVMSG {target} :{text} from {nick}",
        )
