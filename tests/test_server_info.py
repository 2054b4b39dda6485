"""Server information commands (issue 7): MOTD from a file, ADMIN, INFO,
HELP (index, a command, an unknown subject), VERSION and TIME, with raw
sockets, and what they answer before registration."""

from __future__ import annotations

from harness.raw import esc


def test_motd_from_a_file_admin_info_help(make_platform, clients, uniq, tmp_path):
    motd = tmp_path / "motd.txt"
    motd.write_text("Welcome to the test network.\nRule 1: be kind.\n")
    plat = make_platform(gateways=1, env={
        "CHAT__IRC__MOTD_FILE": str(motd), "CHAT__IRC__ADMIN_EMAIL": "ops@example.org",
        "CHAT__IRC__ADMIN_LOCATION": "Test lab",
    })
    c = clients.user(uniq("si"), plat=plat)
    nick = esc(c.nick)
    burst = [ln.raw for ln in c.burst]
    assert any(ln.endswith(":- Rule 1: be kind.") for ln in burst), burst
    c.send("MOTD")
    c.expect(rf" 375 {nick} :- \S+ Message of the day - ")
    c.expect(rf" 372 {nick} :- Welcome to the test network\.$")
    c.expect(rf" 376 {nick} :End of /MOTD command\.$")

    c.send("ADMIN")
    c.expect(rf" 256 {nick} \S+ :Administrative info$")
    c.expect(rf" 257 {nick} :Test lab$")
    c.expect(rf" 258 {nick} :")
    c.expect(rf" 259 {nick} :ops@example\.org$")

    c.send("INFO")
    c.expect(rf" 371 {nick} :.*IRC, XMPP and Tinode")
    c.expect(rf" 374 {nick} :End of /INFO list$")

    c.send("HELP")
    c.expect(rf" 704 {nick} \* :Commands: ")
    c.expect(rf" 706 {nick} \* :End of /HELP$")
    c.send("HELP join")
    c.expect(rf" 704 {nick} JOIN :JOIN <#channel>")
    c.expect(rf" 706 {nick} JOIN :End of /HELP$")
    c.send("HELP FROBNICATE")
    c.expect(rf" 524 {nick} FROBNICATE :No help available on this topic$")

    c.send("VERSION")
    c.expect(rf" 351 {nick} \S+ \S+ :")
    c.send("TIME")
    c.expect(rf" 391 {nick} \S+ :\w+ \w+ \d\d \d{{4}} -- \d\d:\d\d:\d\d \+00:00$")


def test_info_commands_need_registration(platform, clients):
    c = clients.connect(0)
    for cmd in ("ADMIN", "INFO", "HELP"):
        c.send(cmd)
        c.expect(r" 451 \* :You have not registered")
