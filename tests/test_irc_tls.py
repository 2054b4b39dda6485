"""IRC over TLS (issue 7): the gateway's TLS listener with a certificate
made by `chatctl tls self-signed`, raw TLS clients (Python `ssl`, which
verifies the certificate against it), with and without a client
certificate, beside plain TCP clients in the same channel; and bad input
on the TLS port (a plain-text client, a client that never finishes the
handshake) ending only that connection.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import time
import urllib.request

from harness.platform import bin_dir
from harness.raw import by, esc

CAPS = ("message-tags", "server-time")


def test_tls_and_plain_clients_share_a_channel(platform, clients, uniq):
    chan = "#" + uniq("tls")
    secure = platform.connect_tls(0)
    nick = uniq("ts")
    secure.register(nick, caps=CAPS)
    plain = clients.user(uniq("tp"), gw=1, caps=CAPS)
    secure.join(chan)
    plain.join(chan)
    secure.send(f"PRIVMSG {chan} :over tls")
    plain.expect(by(nick) + rf"PRIVMSG {esc(chan)} :over tls$")
    plain.send(f"PRIVMSG {chan} :over tcp")
    secure.expect(by(plain.nick) + rf"PRIVMSG {esc(chan)} :over tcp$")
    # The certificate is the platform's: TLS 1.2 or 1.3, verified.
    assert secure.sock.version() in ("TLSv1.2", "TLSv1.3"), secure.sock.version()
    secure.close()


def test_a_client_certificate_is_accepted_and_whois_tells(platform, clients, tmp_path, uniq):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run([str(bin_dir() / "chatctl"), "tls", "self-signed", "--cert", str(cert),
                    "--key", str(key), "--name", "alice-client"], check=True, capture_output=True)
    c = platform.connect_tls(1, cert=(str(cert), str(key)))
    nick = uniq("tc")
    c.register(nick)
    c.send("PING :still-here")
    c.expect(r"PONG \S+ :still-here$")
    # WHOIS says who is on TLS (671); the fingerprint (276) only to its owner.
    fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()
    c.send(f"WHOIS {nick}")
    c.expect(rf" 671 {esc(nick)} {esc(nick)} :is using a secure connection$")
    c.expect(rf" 276 {esc(nick)} {esc(nick)} :has client certificate fingerprint {fp}$")
    c.expect(rf" 318 {esc(nick)} {esc(nick)} ")
    other = clients.user(uniq("tq"))
    other.send(f"WHOIS {nick}")
    other.expect(rf" 671 {esc(other.nick)} {esc(nick)} :is using a secure connection$")
    end = other.expect(rf" 318 {esc(other.nick)} {esc(nick)} ")
    assert not [ln for ln in other.history if " 276 " in ln.raw], "a fingerprint shown to another"
    other.send(f"WHOIS {other.nick}")
    other.expect(rf" 318 {esc(other.nick)} {esc(other.nick)} ")
    assert not [ln for ln in other.history if ln.n > end.n and " 671 " in ln.raw], "plain TCP is not secure"
    c.close()


def test_bad_input_on_the_tls_port_ends_only_that_connection(platform, clients, uniq):
    g = platform.gateway(0)
    chan = "#" + uniq("tlsbad")
    watcher = clients.user(uniq("tw"))
    watcher.join(chan)
    # Plain IRC to the TLS port: the handshake fails, the socket closes.
    s = socket.create_connection(("127.0.0.1", g.tls_port), timeout=10)
    s.sendall(b"NICK x\r\nUSER x 0 * :x\r\n")
    s.settimeout(10)
    try:
        data = s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        data = b""
    assert b"001" not in data, data
    s.close()
    # A client that connects and says nothing is no one's problem but its own.
    idle = socket.create_connection(("127.0.0.1", g.tls_port), timeout=10)
    # A client that refuses our certificate (verification on, no CA) fails alone.
    strict = ssl.create_default_context()
    raw = socket.create_connection(("127.0.0.1", g.tls_port), timeout=10)
    try:
        strict.wrap_socket(raw, server_hostname="127.0.0.1")
        raise AssertionError("an unknown self-signed certificate was trusted")
    except ssl.SSLCertVerificationError:
        pass
    # Others go on: TLS and plain.
    other = platform.connect_tls(0)
    other.register(uniq("to"))
    other.join(chan)
    other.send(f"PRIVMSG {chan} :after the bad ones")
    watcher.expect(rf"PRIVMSG {esc(chan)} :after the bad ones$")
    idle.close()
    other.close()
    # The failed handshakes were counted.
    time.sleep(0.2)
    with urllib.request.urlopen(f"http://{g.admin}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    failures = [ln for ln in metrics.splitlines() if ln.startswith("gateway_tls_handshake_failures_total")]
    assert failures and float(failures[0].split()[-1]) >= 2, failures
