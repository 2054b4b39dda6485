"""The alerts exchange (issue: alerts): internal systems publish with a
stock AMQP client (`pika`) to `chat.alerts`, routing key = room, and the
alert appears in the room from the source's bot on IRC, XMPP and Tinode.

Covered: the README's pika example run as it is written (JSON and plain
text), the bot identity on each protocol (IRC source and `bot` tag, XMPP
occupant JID and stanza-id = msgid, Tinode `usrA<source>` and the message
number), how a body is read (content type, JSON by its looks, app-id as
the source), refused alerts (rejected, counted, harmless: the next good
alert still arrives), `chatctl alert` (and its failures), +n and +m rooms,
bans that silence a source, alerts for rooms nobody is in, and history.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pika

from harness.raw import esc
from harness.tinodeagent import is_data
from harness.xmppagent import C, SID, create_account, is_message
from test_chathistory import HISTORY_CAPS, fetch_until

CAPS = ("echo-message", "message-tags", "server-time")
MUC = "conference.localhost"
README = Path(__file__).resolve().parent.parent / "README.md"


def bot_line(nick: str, chan: str, text: str) -> str:
    """The regex of a room message from an alert bot, as IRC shows it."""
    return rf"^(?:@\S+ )?:{re.escape(nick)}!bot@alerts\. PRIVMSG {esc(chan)} :{re.escape(text)}$"


def publish(plat, room: str, body: bytes | str, **props) -> None:
    """Publishes one alert with pika, confirmed and mandatory."""
    connection = pika.BlockingConnection(pika.URLParameters(plat.iso.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange="chat.alerts", routing_key=room, body=body,
            properties=pika.BasicProperties(delivery_mode=2, **props), mandatory=True,
        )
    finally:
        connection.close()


def readme_example() -> str:
    """The pika example of the README's Alerts section, as written there."""
    section = README.read_text().split("## Alerts", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "no python example in the README's Alerts section"
    return blocks[0]


def run_readme_example(plat, room: str) -> None:
    code = readme_example()
    code, n_url = re.subn(r'^AMQP_URL = ".*"$', f"AMQP_URL = {plat.iso.amqp_url!r}", code, flags=re.M)
    code, n_room = re.subn(r'^ROOM = "ops"', f"ROOM = {room!r}", code, flags=re.M)
    assert (n_url, n_room) == (1, 1), "the example no longer sets AMQP_URL and ROOM on lines of their own"
    exec(compile(code, "README.md (Alerts example)", "exec"), {"__name__": "readme_example"})


def metric(plat, name: str, **labels) -> float:
    """A counter of the router's /metrics (0 when absent)."""
    status, body = plat.router.get("/metrics")
    assert status == 200, status
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def wait_metric(plat, name: str, above: float, timeout: float = 10, **labels) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = metric(plat, name, **labels)
        if value > above or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_the_readme_example_reaches_irc_xmpp_and_tinode(platform, clients, agents, tinodes, uniq):
    room = uniq("al")
    chan = "#" + room
    irc = clients.user(uniq("ia"), caps=CAPS)
    irc.join(chan)
    # A new room is +n (no external messages): the bot is no member.
    irc.send(f"MODE {chan}")
    modes = irc.expect(irc.num("324"))
    assert "n" in modes.params[2], modes.raw

    name, pw = create_account(platform, uniq, "xal")
    xmpp = agents(platform, name, pw, gw=1)
    xmpp.send(f"<presence to='{room}@{MUC}/{name}'><x xmlns='http://jabber.org/protocol/muc'>"
              "<history maxstanzas='0'/></x></presence>")
    xmpp.expect(lambda s: s.tag == C + "message" and s.find(C + "subject") is not None, what="subject")

    tin = tinodes(platform, gw=0)
    login = uniq("tal")
    tin.call("create", login=login, password="pw-" + login + "-9", fn="Tal")
    grp = "grp" + room
    assert tin.call("subscribe", topic=grp)["code"] == 200

    run_readme_example(platform, room)

    critical = "[CRITICAL] Disk full on db1 — https://grafana.example/d/db1"
    first = irc.expect(bot_line("grafana", chan, critical), timeout=10)
    assert "bot" in first.tags, first.raw
    second = irc.expect(bot_line("backup", chan, "backup of db1 finished"), timeout=10)
    assert second.n > first.n, "published order"
    msgids = [first.tags["msgid"], second.tags["msgid"]]

    # XMPP: a groupchat message from the bot's occupant JID, same id.
    got = []
    for nick, text in (("grafana", critical), ("backup", "backup of db1 finished")):
        s = xmpp.expect(is_message(f"{room}@{MUC}/{nick}", "groupchat", text), what=f"{nick}'s alert")
        got.append(s.find(SID + "stanza-id").get("id"))
    assert got == msgids

    # Tinode: {data} from the bot's guest id, numbered one after the other.
    d1 = tin.expect(lambda p: is_data(grp)(p) and p["data"]["content"] == critical, what="alert data")
    d2 = tin.expect(lambda p: is_data(grp)(p) and p["data"]["content"] == "backup of db1 finished",
                    what="plain alert data")
    assert (d1["data"]["from"], d2["data"]["from"]) == ("usrAgrafana", "usrAbackup")
    assert d2["data"]["seq"] == d1["data"]["seq"] + 1


def test_how_bodies_are_read_and_bad_alerts_harm_nothing(platform, clients, uniq):
    room = uniq("ab")
    chan = "#" + room
    irc = clients.user(uniq("ib"), caps=CAPS)
    irc.join(chan)
    before = {r: metric(platform, "router_alerts_rejected_total", reason=r) for r in (
        "not_utf8", "no_text", "bad_json", "too_large", "bad_source", "bad_link", "bad_severity", "bad_room")}

    publish(platform, room, b"\xff\xfe not utf-8")
    publish(platform, room, b"", content_type="text/plain")
    publish(platform, room, json.dumps({"severity": "info"}), content_type="application/json")
    publish(platform, room, "not json at all", content_type="application/json")
    publish(platform, room, b"x" * (16 * 1024 + 1))
    publish(platform, room, json.dumps({"text": "x", "source": "1234"}))
    publish(platform, room, json.dumps({"text": "x", "link": "javascript:alert(1)"}))
    publish(platform, room, json.dumps({"text": "x", "severity": "very bad"}))
    publish(platform, "no room, this", "x")
    # Then good ones: the same queue, so they come after the bad ones.
    publish(platform, room, "{braces} make no JSON")
    publish(platform, room, json.dumps({"text": "unlabelled JSON", "source": "Prometheus Alertmanager"}))
    publish(platform, room, json.dumps({"text": "declared text"}), content_type="text/plain; charset=utf-8",
            app_id="Nagios")
    publish(platform, room, "multi\r\nline", app_id="Zabbix", content_encoding="utf-8")

    irc.expect(bot_line("alerts", chan, "{braces} make no JSON"), timeout=10)
    irc.expect(bot_line("prometheus-alertmanager", chan, "unlabelled JSON"))
    irc.expect(bot_line("nagios", chan, '{"text": "declared text"}'))
    irc.expect(bot_line("zabbix", chan, "multi"))
    irc.expect(bot_line("zabbix", chan, "line"))
    irc.expect_none(r"!bot@alerts\. ", within=0.5)
    for reason, count in before.items():
        assert metric(platform, "router_alerts_rejected_total", reason=reason) > count, reason
    assert platform.router.alive
    # The room works as before.
    irc.send(f"PRIVMSG {chan} :still here")
    irc.expect(rf"PRIVMSG {esc(chan)} :still here$")


def test_chatctl_alert(platform, clients, uniq):
    room = uniq("ac")
    chan = "#" + room
    irc = clients.user(uniq("ic"), caps=CAPS)
    irc.join(chan)

    done = platform.chatctl("alert", room, "Deploy of api finished", "--source", "CI", "--severity", "info",
                            "--link", "https://ci.example/jobs/42")
    assert done.returncode == 0, done.stderr
    assert f"alert sent to {room} from ci" in done.stdout, done.stdout
    irc.expect(bot_line("ci", chan, "[INFO] Deploy of api finished — https://ci.example/jobs/42"), timeout=10)
    # The IRC spelling of the room works too; the default bot is "alerts".
    done = platform.chatctl("alert", chan, "second")
    assert done.returncode == 0, done.stderr
    irc.expect(bot_line("alerts", chan, "second"), timeout=10)

    # Refused before anything is sent: a bad source, a bad link.
    bad = platform.chatctl("alert", room, "x", "--source", "42")
    assert bad.returncode != 0 and "source" in bad.stderr, (bad.returncode, bad.stderr)
    bad = platform.chatctl("alert", room, "x", "--link", "ftp://files")
    assert bad.returncode != 0 and "link" in bad.stderr, (bad.returncode, bad.stderr)
    # No broker: a failure, not a hang.
    down = platform.chatctl("alert", room, "x", env={"CHAT__AMQP__URL": "amqp://guest:guest@127.0.0.1:1/%2f"})
    assert down.returncode != 0 and "RabbitMQ" in down.stderr, down.stderr
    irc.expect_none(r"!bot@alerts\. ", within=0.5)


def test_moderated_rooms_bans_missing_rooms_and_history(platform, clients, uniq):
    room = uniq("am")
    chan = "#" + room
    op = clients.user(uniq("io"), caps=CAPS)
    op.join(chan)
    op.send(f"MODE {chan} +m")
    op.expect(rf"MODE {esc(chan)} \+m$")

    publish(platform, room, json.dumps({"text": "through +m", "source": "grafana", "severity": "warning"}))
    live = op.expect(bot_line("grafana", chan, "[WARNING] through +m"), timeout=10)

    # A ban silences one source; the others still speak.
    op.send(f"MODE {chan} +b grafana!*@*")
    op.expect(rf"MODE {esc(chan)} \+b grafana!\*@\*$")
    dropped = metric(platform, "router_intents_dropped_total", op="alert", reason="banned")
    publish(platform, room, json.dumps({"text": "muted", "source": "grafana"}))
    publish(platform, room, "not muted", app_id="jenkins")
    op.expect(bot_line("jenkins", chan, "not muted"), timeout=10)
    op.expect_none(r":grafana!bot@alerts\. ", within=0.5)
    assert wait_metric(platform, "router_intents_dropped_total", dropped, op="alert", reason="banned") > dropped

    # Nobody is in that room: dropped and counted, nothing created.
    missing = metric(platform, "router_intents_dropped_total", op="alert", reason="no_such_room")
    publish(platform, uniq("nobody"), "into the void")
    assert wait_metric(platform, "router_intents_dropped_total", missing, op="alert",
                       reason="no_such_room") > missing

    # History keeps the alerts like any message: the bot, its tag, its id.
    later = clients.user(uniq("il"), caps=HISTORY_CAPS)
    later.join(chan)
    got = fetch_until(later, f"CHATHISTORY LATEST {chan} * 10",
                      lambda b: "not muted" in b.texts)
    alerts = [ln for ln in got.lines if ln.command == "PRIVMSG"]
    assert [(ln.source, ln.text) for ln in alerts] == [
        ("grafana!bot@alerts.", "[WARNING] through +m"),
        ("jenkins!bot@alerts.", "not muted"),
    ], got
    assert alerts[0].tags.get("msgid") == live.tags["msgid"]
    assert all("bot" in ln.tags for ln in alerts), got


def test_alerts_wait_for_a_router(make_platform, clients, uniq):
    """The queue outlives the router: alerts published while no router runs
    (accepted by the broker, so `chatctl alert` succeeds) are shown, in
    their order, once one is back."""
    plat = make_platform(gateways=1)
    room = uniq("aw")
    chan = "#" + room
    irc = clients.user(uniq("iw"), caps=CAPS, plat=plat)
    irc.join(chan)
    plat.stop_router()
    done = plat.chatctl("alert", room, "first, while no router runs", "--source", "cron")
    assert done.returncode == 0, done.stderr
    publish(plat, room, "second, while no router runs", app_id="cron")
    irc.expect_none(r"!bot@alerts\. ", within=1.0)
    plat.start_router()
    lines = irc.collect(r":cron!bot@alerts\. PRIVMSG ", 2, timeout=15)
    assert [ln.text for ln in lines] == ["first, while no router runs", "second, while no router runs"], lines
