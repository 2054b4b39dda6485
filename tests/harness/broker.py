"""A private RabbitMQ node that a test may stop and start.

The shared broker (127.0.0.1:5672, and whatever `make up` runs on it) must
never be disturbed, so a test that restarts "the broker" gets a node of its
own: `PrivateBroker` runs `rabbitmq-server` with its own node name
(`chatt<hex>@localhost`), AMQP and distribution ports, data and log
directory, and no configuration file. It shares the Erlang cookie in
/var/lib/rabbitmq (HOME for the server and for `rabbitmqctl -n`), which is
how `rabbitmqctl` reaches it.

    broker = PrivateBroker(); broker.start()
    plat = make_platform(broker=broker.broker)   # an infra.Broker
    broker.restart(down=3)                       # full stop, pause, start
    broker.close()                               # stop + remove its files

`stop` is a full stop (the node process exits; clients see the connection
closed with 320 CONNECTION_FORCED), `start` keeps the data directory, so
durable queues, their bindings and persistent messages survive, as in a
real broker restart. A node that does not start fails with its log.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from . import infra

RABBIT_HOME = "/var/lib/rabbitmq"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


class NodeBroker(infra.Broker):
    """An `infra.Broker` on a named node: `rabbitmqctl -n` runs with the
    RabbitMQ home as HOME, where the node's cookie is."""

    def ctl(self, *args: str, timeout: float = 60) -> str:
        return _ctl(self.node, *args, timeout=timeout)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["HOME"] = RABBIT_HOME
    return env


def _ctl(node: str | None, *args: str, timeout: float = 60) -> str:
    cmd = ["rabbitmqctl", "-q", *(("-n", node) if node else ()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateBroker:
    """One private RabbitMQ node: `start`, `stop`, `restart`, `close`."""

    def __init__(self) -> None:
        self.node = f"chatt{secrets.token_hex(4)}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="chat-rmq-", dir="/tmp"))
        shutil.chown(self.dir, "rabbitmq", "rabbitmq")
        self._pick_ports()
        self.running = False
        self.starts = 0

    def _pick_ports(self) -> None:
        self.port = infra.free_port()
        self.dist_port = infra.free_port()

    @property
    def broker(self) -> infra.Broker:
        """What `make_platform(broker=…)` takes."""
        return NodeBroker(host=f"127.0.0.1:{self.port}", node=self.node)

    @property
    def log_file(self) -> Path:
        return self.dir / "log" / f"{self.node}.log"

    def log_tail(self, lines: int = 60) -> str:
        return infra_tail(self.log_file, lines)

    def _server_env(self) -> dict[str, str]:
        env = _env()
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_PID_FILE=str(self.dir / "pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "plugins"),
            # No configuration file at all (the machine's would set the
            # shared broker's listener).
            RABBITMQ_CONFIG_FILE=str(self.dir / "none"),
        )
        return env

    def start(self) -> None:
        """Starts the node (again) and waits until it accepts AMQP
        connections. A first start whose ports turned out to be taken is
        retried on other ports; any other failure raises with the log."""
        for attempt in range(3):
            try:
                self._start_once()
                return
            except RuntimeError:
                taken = "eaddrinuse" in infra_tail(self.log_file, 400)
                if not taken or self.starts > 0 or attempt == 2:
                    raise
                # Nothing was created under the old name that matters: a
                # fresh data directory, fresh ports.
                self._kill_leftovers()
                shutil.rmtree(self.dir / "mnesia", ignore_errors=True)
                shutil.rmtree(self.dir / "log", ignore_errors=True)
                self._pick_ports()

    def _start_once(self) -> None:
        proc = subprocess.run(
            ["rabbitmq-server", "-detached"], env=self._server_env(),
            capture_output=True, text=True, timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"rabbitmq-server -detached failed ({proc.returncode}): {proc.stderr.strip()}\n{self.log_tail()}"
            )
        deadline = time.monotonic() + START_TIMEOUT
        last = f"port {self.port} not open"
        while time.monotonic() < deadline:
            # The AMQP listener opens at the end of the boot; then
            # await_startup answers at once (before, it polls only every
            # 10 s, and fails at once while the node is not registered with
            # epmd yet).
            if _port_open(self.port):
                try:
                    _ctl(self.node, "await_startup", "--timeout", "10", timeout=30)
                    self.running = True
                    self.starts += 1
                    return
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    last = str(e)
            log = infra_tail(self.log_file, 400)
            if "BOOT FAILED" in log or "eaddrinuse" in log:
                break
            time.sleep(0.2)
        raise RuntimeError(f"RabbitMQ node {self.node} did not start ({last}); log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        """Full stop: waits until the node's OS process has exited."""
        if not self.running:
            return
        pid_file = self.dir / "pid"
        # With the pid file, `stop` returns only once the process is gone.
        _ctl(self.node, "stop", str(pid_file), timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.node} still listening after stop")
            time.sleep(0.1)
        self.running = False

    def restart(self, down: float = 3.0) -> float:
        """Stops the node, leaves it down for `down` seconds, starts it
        again; returns how long the AMQP port was closed."""
        self.stop()
        stopped = time.monotonic()
        time.sleep(down)
        self.start()
        return time.monotonic() - stopped

    def _kill_leftovers(self) -> None:
        try:
            pid = int((self.dir / "pid").read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 9)
        except OSError:
            pass

    def close(self) -> list[str]:
        """Stops the node and removes its files; returns the problems met."""
        problems = []
        try:
            self.stop()
        except Exception as e:  # noqa: BLE001 - reported, not raised
            problems.append(f"stopping RabbitMQ node {self.node}: {e}")
            self._kill_leftovers()
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def infra_tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(text.splitlines()[-lines:])
