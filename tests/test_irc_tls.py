"""IRC over TLS (issue 7): the gateway's TLS listener with a certificate
made by `chatctl tls self-signed`, raw TLS clients (Python `ssl`, which
verifies the certificate against it), with and without a client
certificate, beside plain TCP clients in the same channel; and bad input
on the TLS port (a plain-text client, a client that never finishes the
handshake) ending only that connection.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import time
import urllib.request

from harness.accounts import sasl_connect
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


def external(c, nick: str, authzid: str = "") -> str:
    """SASL EXTERNAL before registration: the final numeric."""
    c.cap_ls()
    c.send("CAP REQ :sasl")
    c.expect(r"^(?:@\S+ )?:\S+ CAP \S+ ACK ")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick[:10]} 0 * :{nick}")
    c.send("AUTHENTICATE EXTERNAL")
    first = c.expect(r"^(?:AUTHENTICATE \+|(?:@\S+ )?:\S+ 90[4-8] )")
    if " 904 " in first.raw:
        return "904"
    c.send("AUTHENTICATE " + (base64.b64encode(authzid.encode()).decode() if authzid else "+"))
    return c.expect(r"^(?:@\S+ )?:\S+ (90[2-7]) ").command


def test_sasl_external_with_a_certificate_added_by_nickserv_cert(platform, clients, tmp_path, uniq):
    cert, key = tmp_path / "bob.pem", tmp_path / "bob.key"
    subprocess.run([str(bin_dir() / "chatctl"), "tls", "self-signed", "--cert", str(cert),
                    "--key", str(key), "--name", "bob-client"], check=True, capture_output=True)
    fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()
    account, pw = uniq("tb"), "pw-" + uniq("secret")
    proc = platform.chatctl("account", "create", account, stdin=pw + "\n")
    assert proc.returncode == 0, proc.stderr

    # Not added yet: EXTERNAL fails (904), and without a certificate at all too.
    c = platform.connect_tls(0, cert=(str(cert), str(key)))
    assert external(c, uniq("tn")) == "904"
    c.close()
    bare = platform.connect_tls(0)
    assert external(bare, uniq("tn")) == "904"
    bare.close()

    # Logged in with the password over TLS with the certificate, CERT ADD
    # (the fingerprint of this connection), LIST shows it.
    c = platform.connect_tls(1, cert=(str(cert), str(key)))
    result, _ = sasl_connect(c, account, account, pw)
    assert result == "903", result
    c.send("PRIVMSG NickServ :CERT LIST")
    c.expect(r"NOTICE \S+ :No certificate fingerprints\.$")
    c.send("PRIVMSG NickServ :CERT ADD")
    c.expect(rf"NOTICE \S+ :Added {fp}: ")
    c.send("PRIVMSG NickServ :CERT LIST")
    c.expect(rf"NOTICE \S+ :{fp}$")
    c.close()

    # Now the certificate alone logs in, as that account, on either gateway.
    for gw in (0, 1):
        c = platform.connect_tls(gw, cert=(str(cert), str(key)))
        assert external(c, uniq("tx")) == "903"
        line = [ln for ln in c.history if ln.command == "900"][-1]
        assert line.params[2] == account, line.raw
        c.close()
    # An authzid naming another account is refused.
    c = platform.connect_tls(0, cert=(str(cert), str(key)))
    assert external(c, uniq("tx"), authzid="someone-else") == "904"
    c.close()

    # Another account cannot add it; its owner can remove it.
    other, opw = uniq("to"), "pw-" + uniq("other")
    assert platform.chatctl("account", "create", other, stdin=opw + "\n").returncode == 0
    o = clients.connect(0)
    assert sasl_connect(o, other, other, opw)[0] == "903"
    o.send(f"PRIVMSG NickServ :CERT ADD {fp.upper()}")
    o.expect(rf"NOTICE \S+ :{fp.upper()} is another account's\.$")
    o.send("PRIVMSG NickServ :CERT ADD")
    o.expect(r"NOTICE \S+ :You are not using a TLS client certificate")
    o.send("PRIVMSG NickServ :CERT ADD not-a-fingerprint")
    o.expect(r"NOTICE \S+ :not-a-fingerprint is not a fingerprint of your account\.$")
    c = platform.connect_tls(0, cert=(str(cert), str(key)))
    assert sasl_connect(c, account, account, pw)[0] == "903"
    c.send(f"PRIVMSG NickServ :CERT DEL {fp}")
    c.expect(rf"NOTICE \S+ :Removed {fp}\.$")
    c.close()
    c = platform.connect_tls(0, cert=(str(cert), str(key)))
    assert external(c, uniq("tx")) == "904"
    c.close()
