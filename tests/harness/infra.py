"""Isolation on the shared RabbitMQ, NATS and PostgreSQL servers.

Every platform a test starts gets its own RabbitMQ vhost `t-<hex>`, NATS
bucket prefix `t<hex>` and PostgreSQL database `t_<hex>` (created by the
router, the first service to start), so test runs never see each other
(nor a `make up` running on the default vhost `/`, prefix `chat`, database
`chat`), and all three are removed afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import threading

NATS_URL = "nats://127.0.0.1:4222"
AMQP_HOST = "127.0.0.1:5672"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
BUCKETS = ("sessions", "nicks", "rooms", "routers", "whowas")
# Ports a `make up` may be using: never hand them out.
RESERVED_PORTS = {6667, 9100, 9101}

_ports_lock = threading.Lock()
_ports_given: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and was not given
    out before in this test run."""
    with _ports_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _ports_given and port not in RESERVED_PORTS:
                _ports_given.add(port)
                return port


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    """Runs rabbitmqctl quietly and returns its stdout; raises on failure."""
    proc = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


class Broker:
    """Which RabbitMQ a platform uses: the shared one (default) or a private
    node a test may stop and start (`harness.broker`)."""

    def __init__(self, host: str = AMQP_HOST, node: str | None = None) -> None:
        self.host = host
        # rabbitmqctl's -n; None = the local default node.
        self.node = node

    def ctl(self, *args: str, timeout: float = 60) -> str:
        return rabbitmqctl(*(("-n", self.node) if self.node else ()), *args, timeout=timeout)


SHARED_BROKER = Broker()


class Isolation:
    """A private vhost and NATS prefix. `create()` then `destroy()`."""

    def __init__(self, broker: Broker | None = None) -> None:
        token = secrets.token_hex(4)
        self.broker = broker or SHARED_BROKER
        self.vhost = f"t-{token}"
        self.prefix = f"t{token}"
        self.amqp_url = f"amqp://guest:guest@{self.broker.host}/{self.vhost}"
        self.database = f"t_{token}"
        self.postgres_url = f"{PG_SERVER}/{self.database}"

    def create(self) -> None:
        self.broker.ctl("add_vhost", self.vhost)
        self.broker.ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def destroy(self) -> list[str]:
        """Deletes the vhost and the buckets; returns the problems met (so a
        teardown can report them without hiding the test's own result)."""
        problems = []
        try:
            self.broker.ctl("delete_vhost", self.vhost)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            problems.append(f"deleting vhost {self.vhost}: {e}")
        try:
            asyncio.run(delete_buckets(self.prefix))
        except Exception as e:  # noqa: BLE001
            problems.append(f"deleting NATS buckets {self.prefix}_*: {e}")
        try:
            drop_database(self.database)
        except Exception as e:  # noqa: BLE001
            problems.append(f"dropping database {self.database}: {e}")
        return problems

    def bindings(self) -> list[tuple[str, str, str, str]]:
        """(source, destination, destination kind, routing key) of every
        binding in the vhost, from `rabbitmqctl list_bindings`."""
        out = self.broker.ctl(
            "list_bindings", "-p", self.vhost, "--no-table-headers",
            "source_name", "destination_name", "destination_kind", "routing_key",
        )
        rows = []
        for line in out.splitlines():
            cols = line.split("\t")
            if len(cols) == 4:
                rows.append((cols[0], cols[1], cols[2], cols[3]))
        return rows


def drop_database(name: str) -> None:
    """DROP DATABASE … WITH (FORCE): also ends sessions a killed service left."""
    proc = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
         "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
        capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")


async def delete_buckets(prefix: str) -> None:
    import nats
    from nats.js.errors import NotFoundError, BucketNotFoundError

    nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        for name in BUCKETS:
            try:
                await js.delete_key_value(f"{prefix}_{name}")
            except (NotFoundError, BucketNotFoundError):
                pass
    finally:
        await nc.close()


async def _kv_get(prefix: str, bucket: str, key: str) -> bytes | None:
    import nats
    from nats.js.errors import KeyNotFoundError, NotFoundError, BucketNotFoundError

    nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
    try:
        kv = await nc.jetstream().key_value(f"{prefix}_{bucket}")
        try:
            entry = await kv.get(key)
        except (KeyNotFoundError, NotFoundError, BucketNotFoundError):
            return None
        return entry.value
    finally:
        await nc.close()


def kv_get(prefix: str, bucket: str, key: str) -> bytes | None:
    """Reads one key of a deployment's bucket (None when absent)."""
    return asyncio.run(_kv_get(prefix, bucket, key))


async def _kv_purge(prefix: str, bucket: str, key: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
    try:
        kv = await nc.jetstream().key_value(f"{prefix}_{bucket}")
        await kv.purge(key)
    finally:
        await nc.close()


def kv_purge(prefix: str, bucket: str, key: str) -> None:
    """Purges one key of a deployment's bucket (its value and history), as
    if the record had been lost."""
    asyncio.run(_kv_purge(prefix, bucket, key))


async def _kv_subjects(prefix: str, bucket: str) -> dict[str, int]:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
    try:
        stream = f"KV_{prefix}_{bucket}"
        info = await nc.jetstream().stream_info(stream, subjects_filter=">")
        return dict(info.state.subjects or {})
    finally:
        await nc.close()


def kv_subjects(prefix: str, bucket: str) -> dict[str, int]:
    """Every subject still held by a bucket's stream (live keys and the
    markers of deleted ones), with its message count."""
    return asyncio.run(_kv_subjects(prefix, bucket))


def escape_name(name: str) -> str:
    """The platform's key escape of a folded name (bus::names::escape)."""
    out = []
    for b in name.lower().encode():
        c = chr(b)
        out.append(c if (c.isascii() and (c.islower() or c.isdigit()) or c in "_-") else f"={b:02X}")
    return "".join(out)
