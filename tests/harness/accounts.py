"""Client side of accounts for tests: SASL PLAIN and SCRAM over a raw
socket, REGISTER, and connection set-ups that log in before CAP END.

The SCRAM client is `scramp` (a complete RFC 5802/7677 implementation): it
computes the proof from the password and raises `scramp.ScramException`
when the server-final-message's `v=` is not the server signature the
password implies, so a test that passes proves the server really knows the
password's SCRAM keys.
"""

from __future__ import annotations

import base64
import re
import time

import scramp

from .raw import RawClient

# AUTHENTICATE from the server, with or without a source prefix.
AUTH_LINE = r"^(?:@\S+ )?(?::\S+ )?AUTHENTICATE (\S+)$"
CHUNK = 400
# The final SASL numerics (903 success, 902/904/905/906/907 failures).
SASL_DONE = r"^(?:@\S+ )?:\S+ (90[2-7]) "
# A login can wait for argon2 in a debug build and a bus round trip.
LOGIN_TIMEOUT = 15.0


def b64(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


def send_sasl_data(c: RawClient, payload: str | bytes) -> None:
    """Sends `payload` base64-encoded as AUTHENTICATE chunks of 400 bytes;
    a final chunk of exactly 400 bytes (or no data) is followed by `+`."""
    encoded = b64(payload)
    for i in range(0, len(encoded), CHUNK):
        c.send(f"AUTHENTICATE {encoded[i:i + CHUNK]}")
    if len(encoded) % CHUNK == 0:
        c.send("AUTHENTICATE +")


def read_sasl_data(c: RawClient, timeout: float = LOGIN_TIMEOUT, first=None) -> bytes:
    """Reads AUTHENTICATE chunks (starting with `first`, an already taken
    line, if given) until one shorter than 400 bytes (`+` is empty) and
    returns the decoded data."""
    parts = []
    while True:
        line, first = (first, None) if first is not None else (c.expect(AUTH_LINE, timeout), None)
        chunk = line.params[-1]
        if chunk == "+":
            break
        parts.append(chunk)
        if len(chunk) < CHUNK:
            break
    return base64.b64decode("".join(parts))


def start_mechanism(c: RawClient, mechanism: str, timeout: float = LOGIN_TIMEOUT) -> None:
    c.send(f"AUTHENTICATE {mechanism}")
    line = c.expect(rf"{AUTH_LINE}|{SASL_DONE}|(?: 908 )", timeout)
    assert line.command == "AUTHENTICATE" and line.params[-1] == "+", (
        f"AUTHENTICATE {mechanism} must be answered with `AUTHENTICATE +`, got {line.raw!r}"
    )


def sasl_plain(c: RawClient, account: str, password: str, authzid: str = "", timeout: float = LOGIN_TIMEOUT) -> str:
    """AUTHENTICATE PLAIN; returns the final numeric ('903', '904', …)."""
    start_mechanism(c, "PLAIN", timeout)
    send_sasl_data(c, f"{authzid}\0{account}\0{password}")
    return c.expect(SASL_DONE, timeout).command


def sasl_scram(
    c: RawClient, account: str, password: str, mechanism: str = "SCRAM-SHA-256", timeout: float = LOGIN_TIMEOUT
) -> str:
    """A full SCRAM exchange with scramp as the client. Returns '903' on
    success (after scramp verified the server signature) or the failure
    numeric the server sent instead of the next challenge. Raises
    scramp.ScramException when the server's signature is wrong."""
    client = scramp.ScramClient([mechanism], account, password)
    start_mechanism(c, mechanism, timeout)
    send_sasl_data(c, client.get_client_first())
    first = c.expect(rf"{AUTH_LINE}|{SASL_DONE}", timeout)
    if first.command != "AUTHENTICATE":
        return first.command
    client.set_server_first(read_sasl_data(c, timeout, first).decode())
    send_sasl_data(c, client.get_client_final())
    final = c.expect(rf"{AUTH_LINE}|{SASL_DONE}", timeout)
    if final.command != "AUTHENTICATE":
        return final.command
    client.set_server_final(read_sasl_data(c, timeout, final).decode())  # raises on a wrong v=
    c.send("AUTHENTICATE +")
    return c.expect(SASL_DONE, timeout).command


def sasl_connect(
    c: RawClient,
    nick: str,
    account: str,
    password: str,
    mechanism: str = "PLAIN",
    extra_caps: tuple[str, ...] = (),
    finish: bool = True,
    timeout: float = LOGIN_TIMEOUT,
) -> tuple[str, list]:
    """The usual client flow: CAP LS 302, CAP REQ sasl, NICK, USER,
    AUTHENTICATE…, then (if `finish`) CAP END and the welcome. Returns the
    final SASL numeric and the lines seen up to it that are 900-908."""
    c.cap_ls(timeout)
    c.send("CAP REQ :" + " ".join(("sasl", *extra_caps)))
    c.expect(r"^(?:@\S+ )?:\S+ CAP \S+ ACK ", timeout)
    c.send(f"NICK {nick}")
    c.send(f"USER {nick[:10]} 0 * :SASL {nick}")
    if mechanism == "PLAIN":
        result = sasl_plain(c, account, password, timeout=timeout)
    else:
        result = sasl_scram(c, account, password, mechanism, timeout=timeout)
    numerics = [ln for ln in c.history if ln.command in {"900", "901", "902", "904", "906", "907", "908"}]
    if finish:
        c.send("CAP END")
        c.expect(rf"^(?:@\S+ )?:\S+ 001 {re.escape(nick)} ", timeout)
        c.expect(rf"^(?:@\S+ )?:\S+ (?:376|422) {re.escape(nick)} ", timeout)
        c.nick = nick
        c.drain()
    return result, numerics


def try_plain_login(c: RawClient, account: str, password: str, timeout: float = LOGIN_TIMEOUT) -> str:
    """One login attempt on a fresh, unregistered connection (no CAP END):
    the final SASL numeric, or 'timeout'."""
    try:
        c.send("CAP REQ :sasl")
        c.expect(r"^(?:@\S+ )?:\S+ CAP \S+ ACK ", timeout)
        return sasl_plain(c, account, password, timeout=timeout)
    except AssertionError:
        return "timeout"


def register_command(c: RawClient, account: str, password: str, email: str = "*", timeout: float = LOGIN_TIMEOUT):
    """`REGISTER account email password`; returns the REGISTER SUCCESS or
    FAIL REGISTER line."""
    c.send(f"REGISTER {account} {email} {password}")
    return c.expect(r"^(?:@\S+ )?(?::\S+ )?(?:REGISTER SUCCESS|FAIL REGISTER) ", timeout)


def nickserv(c: RawClient, text: str) -> None:
    c.send(f"PRIVMSG NickServ :{text}")


NICKSERV_NOTICE = r"^(?:@\S+ )?:NickServ!NickServ@services\.? NOTICE "


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
