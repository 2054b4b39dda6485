"""Fixtures of the integration suite.

* `platform` (session): 1 router + 1 auth service + 2 gateways with generous
  flood limits, shared by most tests; every test uses its own nicks,
  channels and accounts (`uniq`).
* `make_platform` (function): a private deployment for tests that kill
  processes, with a short session TTL and sweep interval.
* `clients`: opens raw-socket clients (and closes them after the test).

On a failing test the tails of every live platform's logs are attached to
the report; after every test, new `panicked at` lines in any log fail it.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.platform import Platform  # noqa: E402
from harness.raw import RawClient  # noqa: E402

# Platforms alive right now (for log tails on failure and panic checks).
LIVE: list[Platform] = []
# Byte offsets up to which each log was already checked for panics.
PANIC_OFFSETS: dict[Path, int] = {}

GENEROUS_FLOOD = {"CHAT__IRC__FLOOD_BURST": "1000", "CHAT__IRC__FLOOD_RATE": "1000"}
# Every test connects from 127.0.0.1: the per-address login-failure limit
# would otherwise let one test's wrong passwords lock out the next tests.
# (The per-account limit stays at its default; test_accounts checks it.)
GENEROUS_AUTH = {"CHAT__AUTH__MAX_FAILURES_PER_ADDR": "100000"}
# Tests that kill processes: users of a dead gateway QUIT after ~TTL + sweep.
FAST_EXPIRY = {"CHAT__BUS__SESSION_TTL_SECS": "3", "CHAT__ROUTER__SWEEP_INTERVAL_SECS": "1"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("call", "setup"):
        for plat in LIVE:
            report.sections.append((f"logs of {plat.label} (vhost {plat.vhost})", plat.log_tails(40)))


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Platform:
    plat = Platform(tmp_path_factory.mktemp("session-platform"), env={**GENEROUS_FLOOD, **GENEROUS_AUTH}, label="session platform")
    LIVE.append(plat)
    try:
        plat.start(gateways=2)
    except Exception as e:
        LIVE.remove(plat)
        for problem in plat.close():
            e.add_note(problem)
        raise
    yield plat
    LIVE.remove(plat)
    problems = plat.close()
    if problems:
        pytest.fail("session platform teardown: " + "; ".join(problems))


@pytest.fixture
def make_platform(tmp_path):
    """Factory: make_platform(gateways=2, env={...}, auth_replicas=1,
    history_replicas=1, broker=None) → a started private Platform (on the
    shared RabbitMQ unless `broker` names a private node)."""
    made: list[Platform] = []

    def make(
        gateways: int = 2, env: dict[str, str] | None = None, auth_replicas: int = 1,
        history_replicas: int = 1, broker=None,
    ) -> Platform:
        plat = Platform(
            tmp_path / f"platform-{len(made)}",
            env={**GENEROUS_FLOOD, **GENEROUS_AUTH, **FAST_EXPIRY, **(env or {})},
            label=f"test platform {len(made)}",
            broker=broker,
        )
        made.append(plat)
        LIVE.append(plat)
        plat.start(gateways=gateways, auth_replicas=auth_replicas, history_replicas=history_replicas)
        return plat

    yield make
    problems = []
    for plat in made:
        LIVE.remove(plat)
        problems.extend(plat.close())
    if problems:
        pytest.fail("platform teardown: " + "; ".join(problems))


@pytest.fixture(autouse=True)
def _no_panics():
    """Fails the test during which a process logged a panic."""
    yield
    found = []
    for plat in LIVE:
        found.extend(plat.panics(PANIC_OFFSETS))
    if found:
        pytest.fail("process panicked:\n" + "\n".join(found))


class Clients:
    """Opens raw clients on a platform's gateways; closes them all at the end."""

    def __init__(self, default_platform_getter):
        self._get_default = default_platform_getter
        self.opened: list[RawClient] = []

    def connect(self, gw=0, plat: Platform | None = None, **kw) -> RawClient:
        plat = plat or self._get_default()
        client = plat.connect(gw, **kw)
        self.opened.append(client)
        return client

    def user(self, nick: str, gw=0, caps=(), plat: Platform | None = None, **kw) -> RawClient:
        """A registered client."""
        client = self.connect(gw, plat)
        client.register(nick, caps=caps, **kw)
        return client

    def close_all(self) -> None:
        for c in self.opened:
            c.close()


@pytest.fixture
def clients(request):
    c = Clients(lambda: request.getfixturevalue("platform"))
    yield c
    c.close_all()


@pytest.fixture
def uniq():
    """uniq('alice') → 'alice3f9a1c': nicks and channels no other test uses."""

    def make(base: str) -> str:
        return f"{base}{secrets.token_hex(3)}"

    return make


@pytest.fixture
def agents():
    """agents(platform, account, password, gw=0, resource=None) → a logged-in
    XmppAgent (@xmpp/client), closed after the test."""
    from harness.xmppagent import XmppAgent, ws_url

    opened = []

    def make(plat, name: str, pw: str, gw: int = 0, resource: str | None = None):
        a = XmppAgent(ws_url(plat, gw), name, pw, resource)
        opened.append(a)
        return a

    yield make
    for a in opened:
        a.close()


@pytest.fixture
def tinodes():
    """tinodes(platform, gw=0, transport="ws") → a connected TinodeAgent
    (tinode-sdk), closed after the test."""
    from harness.tinodeagent import TinodeAgent

    opened = []

    def make(plat, gw: int = 0, transport: str = "ws"):
        a = TinodeAgent(plat, gw=gw, transport=transport)
        opened.append(a)
        return a

    yield make
    for a in opened:
        a.close()


@pytest.fixture
def ircagents():
    """ircagents(platform, nick, gw=0, transport="tcp"|"ws", subprotocol=None)
    → a registered IrcAgent (irc-framework), closed after the test."""
    from harness.ircagent import IrcAgent

    opened = []

    def make(plat, nick: str, gw: int = 0, transport: str = "tcp", subprotocol: str | None = None):
        a = IrcAgent(plat, nick, gw=gw, transport=transport, subprotocol=subprotocol)
        opened.append(a)
        return a

    yield make
    for a in opened:
        a.close()
