"""XMPP over WebSocket, part 1 (issue 5): the stream layer on `/xmpp`.

Raw frames (Python `websockets`): the `<open/>` answer and features, a wrong
host, `<close/>`, malformed XML, a DOCTYPE entity bomb, a 10 MB stanza and a
missing subprotocol, each while a second stream on the same gateway keeps
working. Real client library (`@xmpp/client` in Node, tests/js): login with
PLAIN, SCRAM-SHA-1 and SCRAM-SHA-256 to a `chatctl`-created account, a bound
JID, and `not-authorized` for a wrong password.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest
import websockets

JS = Path(__file__).resolve().parent / "js"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OPEN = f'<open xmlns="{FRAMING}" to="localhost" version="1.0"/>'
PING = '<iq xmlns="jabber:client" type="get" id="{id}"><ping xmlns="urn:xmpp:ping"/></iq>'


def url(plat, gw: int = 0) -> str:
    return f"ws://127.0.0.1:{plat.gateway(gw).http_port}/xmpp"


async def connect(plat, gw: int = 0):
    return await websockets.connect(url(plat, gw), subprotocols=["xmpp"], max_size=None, open_timeout=10)


async def recv(ws, timeout: float = 10) -> str:
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str), f"binary frame: {msg!r}"
    return msg


async def opened(ws) -> tuple[str, str]:
    """Sends <open/>; returns the server's <open/> and the features."""
    await ws.send(OPEN)
    return await recv(ws), await recv(ws)


async def stream_error(ws) -> str:
    """Reads up to the stream error; asserts <close/> follows and the socket closes."""
    while True:
        msg = await recv(ws)
        if "<stream:error" in msg:
            break
    assert 'xmlns:stream="http://etherx.jabber.org/streams"' in msg, msg
    cond = re.search(r'<([a-z-]+) xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>', msg)
    assert cond, msg
    close = await recv(ws)
    assert close.startswith("<close") and FRAMING in close, close
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    return cond.group(1)


async def logged_in(plat, name: str, pw: str, gw: int = 0):
    """A raw stream logged in with PLAIN, restarted and bound; returns (ws, jid)."""
    ws = await connect(plat, gw)
    await opened(ws)
    plain = base64.b64encode(f"\0{name}\0{pw}".encode()).decode()
    await ws.send(f'<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">{plain}</auth>')
    success = await recv(ws)
    assert success.startswith("<success") and "urn:ietf:params:xml:ns:xmpp-sasl" in success, success
    _, features = await opened(ws)
    assert "<bind" in features and "urn:ietf:params:xml:ns:xmpp-bind" in features, features
    assert "<session" in features and "<optional/>" in features, features
    await ws.send('<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>')
    bound = await recv(ws)
    jid = re.search(r"<jid>([^<]+)</jid>", bound)
    assert jid and 'type="result"' in bound and 'id="b1"' in bound, bound
    return ws, jid.group(1)


async def pings(ws, ident: str) -> None:
    """XEP-0199 ping on a bound stream gets its result."""
    await ws.send(PING.format(id=ident))
    pong = await recv(ws)
    assert f'id="{ident}"' in pong and 'type="result"' in pong, pong


def run(coro):
    return asyncio.run(coro)


def test_open_answers_with_open_and_sasl_features(platform):
    async def go():
        ws = await connect(platform)
        assert ws.subprotocol == "xmpp"
        open_, features = await opened(ws)
        assert open_.startswith("<open") and FRAMING in open_, open_
        assert 'from="localhost"' in open_ and 'version="1.0"' in open_, open_
        assert re.search(r' id="[^"]+"', open_), open_
        assert features.startswith("<stream:features") and 'xmlns:stream="http://etherx.jabber.org/streams"' in features
        mechs = re.findall(r"<mechanism>([^<]+)</mechanism>", features)
        assert mechs == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], features
        # Whitespace keepalives are harmless.
        await ws.send(" ")
        await ws.send('<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="DIGEST-MD5">=</auth>')
        assert "<invalid-mechanism" in await recv(ws)
        await ws.send('<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">@@@</auth>')
        assert "<incorrect-encoding" in await recv(ws)
        await ws.send(f'<close xmlns="{FRAMING}"/>')
        close = await recv(ws)
        assert close.startswith("<close") and FRAMING in close, close
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)

    run(go())


def test_missing_subprotocol_is_refused(platform):
    async def go():
        with pytest.raises(websockets.InvalidStatus) as err:
            await websockets.connect(url(platform), open_timeout=10)
        assert err.value.response.status_code == 400

    run(go())


BAD_INPUT = {
    "wrong host": (f'<open xmlns="{FRAMING}" to="example.org" version="1.0"/>', "host-unknown", False),
    "malformed": ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><unclosed></auth>", "not-well-formed", True),
    "entity bomb": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
        + ']><message xmlns="jabber:client"><body>&lol9;</body></message>',
        "restricted-xml",
        True,
    ),
    "10 MB stanza": (
        '<message xmlns="jabber:client"><body>' + "x" * (10 * 1024 * 1024) + "</body></message>",
        "policy-violation",
        True,
    ),
    "stanza before auth": ('<iq xmlns="jabber:client" type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>', "not-authorized", True),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_ends_only_its_own_stream(platform, xmpp_account, case):
    frame, condition, open_first = BAD_INPUT[case]

    async def go():
        bystander, _ = await logged_in(platform, *xmpp_account)
        ws = await connect(platform)
        if open_first:
            await opened(ws)
        await ws.send(frame)
        assert await stream_error(ws) == condition
        await pings(bystander, "after-" + secrets.token_hex(3))
        # And new streams are still served.
        fresh = await connect(platform)
        _, features = await opened(fresh)
        assert "<mechanisms" in features
        await fresh.close()
        await bystander.close()

    run(go())


def create_account(plat, name: str, pw: str) -> None:
    proc = plat.chatctl("account", "create", name, stdin=pw + "\n")
    assert proc.returncode == 0, f"chatctl: {proc.returncode} {proc.stdout} {proc.stderr}"


def node_login(plat, user: str, pw: str, mechanism: str, resource: str | None = None) -> dict:
    args = ["node", str(JS / "xmpp-login.mjs"), url(plat), user, pw, mechanism]
    if resource:
        args.append(resource)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=JS)
    assert proc.returncode == 0, f"node: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the node helper:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def xmpp_account(platform):
    name, pw = "x" + secrets.token_hex(5), "pw-" + secrets.token_urlsafe(12)
    create_account(platform, name, pw)
    return name, pw


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_xmpp_client_logs_in_and_binds(platform, xmpp_account, mechanism):
    name, pw = xmpp_account
    result = node_login(platform, name, pw, mechanism)
    assert result["ok"], result
    assert re.fullmatch(rf"{name}@localhost/.+", result["jid"]), result
    assert result["ping"], result
    if mechanism.startswith("SCRAM-"):
        assert result["server_final_ok"], result


def test_client_chosen_resource_is_bound(platform, xmpp_account):
    name, pw = xmpp_account
    result = node_login(platform, name, pw, "SCRAM-SHA-256", resource="laptop")
    assert result["ok"] and result["jid"] == f"{name}@localhost/laptop", result


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_wrong_password_is_not_authorized(platform, xmpp_account, mechanism):
    name, _ = xmpp_account
    result = node_login(platform, name, "wrong-" + secrets.token_hex(4), mechanism)
    assert not result["ok"] and result["condition"] == "not-authorized", result


def test_raw_restart_bind_session_and_iq_errors(platform, xmpp_account):
    name, pw = xmpp_account

    async def go():
        ws, jid = await logged_in(platform, name, pw)
        assert jid.startswith(f"{name}@localhost/"), jid
        # One resource per stream.
        await ws.send('<iq xmlns="jabber:client" type="set" id="b2"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>')
        again = await recv(ws)
        assert 'type="error"' in again and "<not-allowed" in again, again
        await ws.send('<iq xmlns="jabber:client" type="set" id="s1"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>')
        assert re.search(r'type="result".*id="s1"|id="s1".*type="result"', await recv(ws))
        await pings(ws, "p1")
        await ws.send('<iq xmlns="jabber:client" type="get" id="v1"><query xmlns="jabber:iq:version"/></iq>')
        err = await recv(ws)
        assert 'type="error"' in err and 'id="v1"' in err and '<error type="cancel">' in err, err
        assert '<service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>' in err, err
        # Message and presence are accepted silently in this part.
        await ws.send('<presence xmlns="jabber:client"/>')
        await pings(ws, "p2")
        await ws.close()

    run(go())
