"""Starting and stopping the chat platform's processes for tests.

A `Platform` is one deployment: its own vhost/prefix/database (see
`infra`), one router, one or more auth-service replicas and N gateways on
free ports, each process logging to its own file. It waits for every
process's /readyz before handing it to a test, and on close SIGTERMs (then
SIGKILLs) everything, deletes the vhost, buckets and database, and reports
any `panicked at` found in the logs.

The auth service is started whenever `target/debug/auth-service` exists
(before issue 3 landed it did not, and the rest of the suite ran without it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import string
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import infra
from .raw import RawClient

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
PANIC = "panicked at"
EXECUTABLES = {
    "router": "router-service", "gateway": "edge-gateway", "auth": "auth-service",
    "history": "history-service",
}
# Auth settings of every test platform: a lockout short enough to wait for.
AUTH_DEFAULTS = {"CHAT__AUTH__LOCKOUT_SECS": "3"}
# Gateways of test platforms replay no history on JOIN unless a test asks
# (tests of that feature set CHAT__IRC__JOIN_REPLAY_LINES themselves), so the
# other tests see exactly the lines they expect after a JOIN.
GATEWAY_DEFAULTS = {"CHAT__IRC__JOIN_REPLAY_LINES": "0"}


def bin_dir() -> Path:
    return Path(os.environ.get("CHAT_BIN_DIR", REPO / "target" / "debug"))


def auth_built() -> bool:
    """True once the auth service binary exists (then it is always started)."""
    return (bin_dir() / EXECUTABLES["auth"]).exists()


def history_built() -> bool:
    """True once the history service binary exists (then it is always started)."""
    return (bin_dir() / EXECUTABLES["history"]).exists()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


class Process:
    """One running binary (router, auth or gateway) of a platform."""

    def __init__(self, kind: str, name: str, env: dict[str, str], log: Path, admin: str):
        self.kind, self.name, self.env, self.log, self.admin = kind, name, env, log, admin
        self.popen: subprocess.Popen | None = None
        self.irc_port: int | None = None
        self.http_port: int | None = None
        self.tls_port: int | None = None
        self.gateway_id: str | None = None

    def start(self) -> None:
        exe = bin_dir() / EXECUTABLES[self.kind]
        if not exe.exists():
            raise RuntimeError(f"{exe} not built (cargo build --workspace)")
        # If the test run itself dies (SIGKILL, a hard timeout), the kernel
        # sends the process SIGTERM instead of leaving it running for ever.
        cmd = [str(exe)]
        if shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "TERM", *cmd]
        with open(self.log, "ab") as out:
            out.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(
                    f"{self.name} exited (code {self.popen.returncode if self.popen else '?'}) "
                    f"before it was ready; log tail:\n{tail(self.log)}"
                )
            try:
                with urllib.request.urlopen(f"http://{self.admin}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready within {timeout}s ({last}); log tail:\n{tail(self.log)}")

    def get(self, path: str) -> tuple[int, str]:
        """GET on the admin port: (status, body)."""
        try:
            with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=5) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def terminate(self, grace: float = 10.0) -> str | None:
        """SIGTERM, then SIGKILL after `grace` seconds. Returns a problem
        description when the process had to be killed."""
        if not self.alive:
            return None
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
            return None
        except subprocess.TimeoutExpired:
            with open(self.log, "ab") as out:
                out.write(f"==== test harness: no exit {grace}s after SIGTERM, SIGKILL ====\n".encode())
            self.popen.kill()
            self.popen.wait(5)
            return f"{self.name} did not exit within {grace}s of SIGTERM"

    def kill9(self) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(5)


class Platform:
    """A router, auth replicas and gateways on a private vhost, NATS prefix
    and database."""

    def __init__(
        self, workdir: Path, env: dict[str, str] | None = None, label: str = "platform",
        broker: "infra.Broker | None" = None,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.iso = infra.Isolation(broker)
        self.common_env = dict(env or {})
        self.router: Process | None = None
        self.auths: list[Process] = []
        self.histories: list[Process] = []
        self.gateways: list[Process] = []
        self.all: list[Process] = []
        self._created = False
        self._letters = iter(string.ascii_lowercase)
        self._auth_count = 0
        self._history_count = 0
        self.router_admin = f"127.0.0.1:{infra.free_port()}"
        self._extra_logs: list[Path] = []
        # Every replica of a deployment must share the token/SCRAM-state secret.
        self.auth_secret = secrets.token_hex(24)

    # ------------------------------------------------------------- building

    def _env(self, extra: dict[str, str] | None, defaults: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process: ours without CHAT*, the platform's
        isolation, then `defaults`, the platform's `env`, and `extra`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT")}
        env.update(
            CHAT__AMQP__URL=self.iso.amqp_url,
            CHAT__NATS__URL=infra.NATS_URL,
            CHAT__NATS__PREFIX=self.iso.prefix,
            CHAT__LOG__LEVEL=os.environ.get("TEST_LOG_LEVEL", "info"),
            CHAT__IRC__NETWORK="TestNet",
            RUST_BACKTRACE="1",
            NO_COLOR="1",
        )
        env.pop("RUST_LOG", None)
        env.update(defaults or {})
        env.update(self.common_env)
        env.update(extra or {})
        return env

    def start(self, gateways: int = 2, auth_replicas: int = 1, history_replicas: int = 1) -> "Platform":
        self.iso.create()
        self._created = True
        self.start_router()
        if auth_built():
            # All replicas at once: their migrations race on an empty database.
            for proc in [self.start_auth(wait=False) for _ in range(auth_replicas)]:
                proc.wait_ready()
        if history_built():
            for proc in [self.start_history(wait=False) for _ in range(history_replicas)]:
                proc.wait_ready()
        for _ in range(gateways):
            self.start_gateway()
        return self

    def auth_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What the auth service and `chatctl` run with (no admin port)."""
        return self._env(extra, defaults={
            "CHAT__POSTGRES__URL": self.iso.postgres_url,
            "CHAT__AUTH__SECRET": self.auth_secret,
            **AUTH_DEFAULTS,
        })

    def start_auth(self, env: dict[str, str] | None = None, wait: bool = True) -> Process:
        """Starts one more auth-service replica (`auth-1`, `auth-2`, …) and
        (if `wait`) waits for its /readyz, which includes its database being
        created and migrated."""
        self._auth_count += 1
        name = f"auth-{self._auth_count}"
        admin = f"127.0.0.1:{infra.free_port()}"
        proc = Process(
            "auth", name, self.auth_env({"CHAT__ADMIN__LISTEN": admin, **(env or {})}),
            self.workdir / f"{name}.log", admin,
        )
        proc.start()
        self.auths.append(proc)
        self.all.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    def start_history(self, env: dict[str, str] | None = None, wait: bool = True) -> Process:
        """Starts one more history-service replica (`history-1`, …) on the
        platform's database and (if `wait`) waits for its /readyz."""
        self._history_count += 1
        name = f"history-{self._history_count}"
        admin = f"127.0.0.1:{infra.free_port()}"
        proc = Process(
            "history", name,
            self._env({"CHAT__ADMIN__LISTEN": admin, **(env or {})},
                      defaults={"CHAT__POSTGRES__URL": self.iso.postgres_url}),
            self.workdir / f"{name}.log", admin,
        )
        proc.start()
        self.histories.append(proc)
        self.all.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    def restart(self, proc: Process, env: dict[str, str] | None = None) -> Process:
        """Starts a process that was stopped or killed again, with the same
        name, ports and environment (plus `env`), and waits for /readyz."""
        assert not proc.alive, f"{proc.name} is still running"
        proc.env = {**proc.env, **(env or {})}
        proc.start()
        proc.wait_ready()
        return proc

    def chatctl(
        self, *args: str, stdin: str | None = None, timeout: float = 60, env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Runs `chatctl ARGS…` against this platform's database and vhost
        (`env` overrides); its output is also appended to chatctl.log
        (searched like the other logs)."""
        exe = bin_dir() / "chatctl"
        if not exe.exists():
            raise RuntimeError(f"{exe} not built (cargo build -p auth-service)")
        proc = subprocess.run(
            [str(exe), *args], env=self.auth_env(env), input=stdin, capture_output=True,
            text=True, timeout=timeout,
        )
        log = self.workdir / "chatctl.log"
        with open(log, "a") as out:
            out.write(f"==== chatctl {' '.join(args)} → exit {proc.returncode} ====\n")
            out.write(proc.stdout)
            out.write(proc.stderr)
        self._extra_logs.append(log)
        return proc

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Runs one query on this platform's database and returns the rows."""
        import psycopg

        with psycopg.connect(self.iso.postgres_url, connect_timeout=10, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def start_router(self, env: dict[str, str] | None = None) -> Process:
        """Starts the router (again, after `stop_router`/`kill9`), waits for
        /readyz. It keeps registered rooms (ChanServ) in the platform's
        database, which it creates if it is the first to start."""
        proc = Process(
            "router", "router",
            self._env({"CHAT__ADMIN__LISTEN": self.router_admin, **(env or {})},
                      defaults={"CHAT__POSTGRES__URL": self.iso.postgres_url}),
            self.workdir / "router.log", self.router_admin,
        )
        proc.start()
        self.router = proc
        self.all.append(proc)
        proc.wait_ready()
        return proc

    def stop_router(self) -> None:
        if self.router:
            self.router.terminate()

    def start_gateway(self, env: dict[str, str] | None = None) -> Process:
        """Starts one more gateway (id `gw-<letter>`) and waits for /readyz."""
        letter = next(self._letters)
        gid = f"gw-{letter}"
        irc_port = infra.free_port()
        http_port = infra.free_port()
        admin = f"127.0.0.1:{infra.free_port()}"
        tls_env, tls_port = {}, None
        if self.tls_files():
            tls_port = infra.free_port()
            cert, key = self.tls_files()
            tls_env = {"CHAT__IRC__TLS_LISTEN": f"127.0.0.1:{tls_port}",
                       "CHAT__IRC__TLS_CERT": str(cert), "CHAT__IRC__TLS_KEY": str(key)}
        proc = Process(
            "gateway", gid,
            self._env({
                "CHAT__GATEWAY__ID": gid,
                "CHAT__IRC__LISTEN": f"127.0.0.1:{irc_port}",
                "CHAT__HTTP__LISTEN": f"127.0.0.1:{http_port}",
                "CHAT__ADMIN__LISTEN": admin,
                **tls_env,
                **(env or {}),
            }, defaults=GATEWAY_DEFAULTS),
            self.workdir / f"gateway-{letter}.log", admin,
        )
        proc.irc_port, proc.http_port, proc.gateway_id = irc_port, http_port, gid
        proc.tls_port = tls_port
        proc.start()
        self.gateways.append(proc)
        self.all.append(proc)
        proc.wait_ready()
        return proc

    def tls_files(self) -> tuple[Path, Path] | None:
        """A self-signed certificate and key for this platform's gateways
        (made once with `chatctl tls self-signed`), or None without chatctl."""
        cert, key = self.workdir / "tls" / "cert.pem", self.workdir / "tls" / "key.pem"
        if not cert.exists():
            exe = bin_dir() / "chatctl"
            if not exe.exists():
                return None
            subprocess.run([str(exe), "tls", "self-signed", "--cert", str(cert), "--key", str(key)],
                           check=True, capture_output=True, timeout=60)
        return cert, key

    def tls_context(self) -> "ssl.SSLContext":
        """A client TLS context that trusts this platform's certificate."""
        import ssl
        ctx = ssl.create_default_context(cafile=str(self.tls_files()[0]))
        return ctx

    def connect_tls(self, gw=0, cert: tuple[str, str] | None = None, **kw) -> RawClient:
        """A TLS connection (optionally presenting a client certificate)."""
        g = self.gateway(gw)
        assert g.tls_port is not None, "no TLS listener"
        ctx = self.tls_context()
        if cert:
            ctx.load_cert_chain(*cert)
        return RawClient("127.0.0.1", g.tls_port, label=f"{g.name}-tls", tls=ctx, **kw)

    def kill9(self, proc: Process) -> None:
        proc.kill9()

    # --------------------------------------------------------------- using

    def gateway(self, index_or_proc) -> Process:
        return index_or_proc if isinstance(index_or_proc, Process) else self.gateways[index_or_proc]

    def connect(self, gw=0, **kw) -> RawClient:
        g = self.gateway(gw)
        assert g.irc_port is not None
        return RawClient("127.0.0.1", g.irc_port, label=f"{g.name}", **kw)

    @property
    def vhost(self) -> str:
        return self.iso.vhost

    @property
    def prefix(self) -> str:
        return self.iso.prefix

    def logs(self) -> list[Path]:
        seen, out = set(), []
        for log in [p.log for p in self.all] + self._extra_logs:
            if log not in seen:
                seen.add(log)
                out.append(log)
        return out

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(f"----- {log} (last {lines} lines) -----\n{tail(log, lines)}" for log in self.logs())

    def panics(self, since: dict[Path, int] | None = None) -> list[str]:
        """Lines with `panicked at` in the logs (after the byte offsets in
        `since`, which is updated to the current ends)."""
        found = []
        for log in self.logs():
            try:
                data = log.read_bytes()
            except OSError:
                continue
            start = since.get(log, 0) if since is not None else 0
            for line in data[start:].decode(errors="replace").splitlines():
                if PANIC in line:
                    found.append(f"{log.name}: {line.strip()}")
            if since is not None:
                since[log] = len(data)
        return found

    # ------------------------------------------------------------ teardown

    def close(self) -> list[str]:
        """Stops every process (in reverse start order: gateways first, the router last),
        removes the vhost, the buckets and the database. Returns problems: panics in logs, cleanup failures."""
        problems = []
        for proc in reversed(self.all):
            try:
                problem = proc.terminate()
            except Exception as e:  # noqa: BLE001
                problem = f"stopping {proc.name}: {e}"
            if problem:
                problems.append(problem)
        if self._created:
            problems.extend(self.iso.destroy())
            self._created = False
        problems.extend(f"panic in log: {p}" for p in self.panics())
        return problems
