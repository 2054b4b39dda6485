"""Static checks of the deployment files: docker-compose.yml, the
Dockerfile, deploy/compose/haproxy.cfg and the Kubernetes manifests in
deploy/kubernetes/.

No Docker engine and no cluster: the compose file is validated against the
Compose Specification's JSON schema (bundled with check-jsonschema), every
Kubernetes manifest against the Kubernetes API's JSON schemas in strict
mode (bundled with kubernetes-validate: unknown fields fail), and then both
are checked against the code they deploy: the binaries the Dockerfile
builds, the configuration keys each service really has (a misspelt
`CHAT__…` variable is otherwise ignored in silence), the admin ports the
probes hit, and the gateway's drain time against the grace periods.

None of these tests uses the `platform` fixture: they start nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
HAPROXY = ROOT / "deploy" / "compose" / "haproxy.cfg"
K8S = ROOT / "deploy" / "kubernetes"
K8S_DEPS = K8S / "dependencies"

# The oldest Kubernetes release the manifests are meant for (every field
# used exists there) and the newest whose schemas kubernetes-validate has.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]

# Which crate's configuration each binary loads.
CONFIG_OF_BINARY = {
    "edge-gateway": "edge-gateway",
    "router-service": "router-service",
    "history-service": "history-service",
    "auth-service": "auth-service",
    "chatctl": "auth-service",
}
SERVICE_BINARIES = ["edge-gateway", "router-service", "history-service", "auth-service"]

# Secrets and config maps the manifests read but do not create: the
# operators' (see deploy/kubernetes/README.md) and the gateway's certificate.
EXTERNAL_SECRET_KEYS = {
    "chat-rabbitmq-default-user": {"username", "password", "host"},
    "chat-postgres-app": {"uri"},
}
EXTERNAL_SECRETS = set(EXTERNAL_SECRET_KEYS) | {"chat-gateway-tls"}


# ---------------------------------------------------------------- helpers


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def kustomization(directory: Path) -> dict:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def manifests() -> list[tuple[Path, dict]]:
    """Every resource of deploy/kubernetes/kustomization.yaml, with its file."""
    out = []
    for name in kustomization(K8S)["resources"]:
        path = K8S / name
        out.extend((path, doc) for doc in load_yaml_docs(path))
    return out


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == kind}


def rust_structs(*files: Path) -> dict[str, dict[str, str]]:
    """`pub struct Name { pub field: Type, … }` → {Name: {field: Type}}.

    Enough of Rust for the configuration structs, which are plain serde
    structs with one `pub field: Type,` per line."""
    structs: dict[str, dict[str, str]] = {}
    for f in files:
        text = f.read_text()
        for m in re.finditer(r"pub struct (\w+)\s*\{(.*?)\n\}", text, re.S):
            fields = {}
            for line in m.group(2).splitlines():
                fm = re.match(r"\s*pub (\w+):\s*(.+?),?\s*$", line)
                if fm:
                    fields[fm.group(1)] = fm.group(2)
            structs[m.group(1)] = fields
    return structs


def config_keys(crate: str) -> dict[str, dict[str, str]]:
    """The configuration of `crate`: {section: {key: Rust type}}."""
    structs = rust_structs(
        ROOT / crate / "src" / "config.rs",
        ROOT / "bus" / "src" / "config.rs",
        ROOT / "bus" / "src" / "pg.rs",
    )
    top = rust_structs(ROOT / crate / "src" / "config.rs")["Config"]
    sections = {}
    for section, ty in top.items():
        name = ty.split("::")[-1]
        assert name in structs, f"{crate}: section {section} has type {ty}, whose struct was not found"
        sections[section] = structs[name]
    return sections


def env_problem(crate: str, var: str) -> str | None:
    """Why `var` (a CHAT__… variable) is not a configuration key of `crate`, or None."""
    parts = var.split("__")
    assert parts[0] == "CHAT"
    path = [p.lower() for p in parts[1:]]
    sections = config_keys(crate)
    if len(path) < 2:
        return f"{var}: needs a section and a key"
    section, key, rest = path[0], path[1], path[2:]
    if section not in sections:
        return f"{var}: {crate} has no section [{section}] (has {sorted(sections)})"
    if key not in sections[section]:
        return f"{var}: {crate}'s [{section}] has no key {key!r} (has {sorted(sections[section])})"
    if rest and "HashMap" not in sections[section][key]:
        return f"{var}: [{section}] {key} is not a table"
    return None


def rust_const_secs(path: Path, name: str) -> int:
    m = re.search(rf"const {name}: Duration = Duration::from_secs\((\d+)\);", path.read_text())
    assert m, (
        f"{name} not found in {path.relative_to(ROOT)}: the grace periods in docker-compose.yml "
        "and deploy/kubernetes are derived from it, update them and this test"
    )
    return int(m.group(1))


def duration_secs(text: str) -> int:
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    assert m and any(m.groups()), f"unparsed duration {text!r}"
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def dockerfile_binaries() -> list[str]:
    """The binaries the Dockerfile builds (`--bin X`), checked to be the ones it installs."""
    text = DOCKERFILE.read_text()
    built = re.findall(r"--bin ([\w-]+)", text)
    copied = re.findall(r"target/release/([\w-]+)", text)
    assert built and sorted(built) == sorted(copied), f"built {built}, copied {copied}"
    return built


def workspace_binaries() -> set[str]:
    """Binaries the workspace defines ([[bin]] names, else the package's own)."""
    ws = ROOT / "Cargo.toml"
    members = re.search(r"members\s*=\s*\[(.*?)\]", ws.read_text(), re.S).group(1)
    names = set()
    for member in re.findall(r'"([^"]+)"', members):
        manifest = (ROOT / member / "Cargo.toml").read_text()
        bins = re.findall(r'\[\[bin\]\]\s*name\s*=\s*"([^"]+)"', manifest)
        if bins:
            names.update(bins)
        elif (ROOT / member / "src" / "main.rs").exists():
            names.add(re.search(r'name\s*=\s*"([^"]+)"', manifest).group(1))
    return names


def compose_binary(service: dict) -> str | None:
    """The platform binary a compose service runs (None for other images)."""
    if service.get("image") != compose()["services"]["edge-gateway"]["image"]:
        return None
    command = service.get("command") or ["edge-gateway"]  # the image's CMD
    if command[0] in ("sh", "bash"):
        named = [b for b in CONFIG_OF_BINARY if re.search(rf"\b{b}\b", command[-1])]
        assert len(named) == 1, f"shell command names {named}: {command}"
        return named[0]
    return command[0]


def env_list(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


# ------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_every_binary_the_deployments_run():
    built = set(dockerfile_binaries())
    unknown = built - workspace_binaries()
    assert not unknown, f"the Dockerfile builds binaries the workspace does not define: {unknown}"
    used = {compose_binary(s) for s in compose()["services"].values()} - {None}
    for _, doc in manifests():
        if doc["kind"] == "Deployment":
            used.update(c["command"][0] for c in doc["spec"]["template"]["spec"]["containers"])
    assert used <= built, f"run but not built by the Dockerfile: {used - built}"
    assert set(SERVICE_BINARIES) <= used, "every service runs in both deployments"
    assert "chatctl" in built, "chatctl makes the TLS certificate and manages accounts"


def test_dockerfile_toolchain_and_runtime():
    text = DOCKERFILE.read_text()
    wanted = re.search(r'rust-version\s*=\s*"(\d+)\.(\d+)"', (ROOT / "Cargo.toml").read_text())
    have = re.search(r"ARG RUST_VERSION=(\d+)\.(\d+)", text)
    assert have, "ARG RUST_VERSION=<major.minor> expected"
    assert tuple(map(int, have.groups())) >= tuple(map(int, wanted.groups())), (
        f"the builder's Rust {have.group(0)} is older than the workspace's rust-version"
    )
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert len(stages) >= 2, "a multi-stage build"
    assert stages[0][0].startswith("rust:"), "the builder is the official rust image"
    runtime = stages[-1][0]
    assert runtime.startswith("debian:") and "slim" in runtime, f"runtime image {runtime}"
    # Builder and runtime from the same Debian release (the binaries link
    # against its glibc).
    assert "${DEBIAN_RELEASE}" in stages[0][0] and "${DEBIAN_RELEASE}" in runtime
    assert "cargo build --release --locked" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0", (
        "the runtime runs as a numeric non-root user (Kubernetes runAsNonRoot checks it)"
    )
    assert "curl" in text, "the compose healthchecks call curl inside the image"


def test_dockerignore_keeps_the_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ("target/", ".run/", ".git", "tests/"):
        assert entry in ignored, f".dockerignore misses {entry}"


# --------------------------------------------------------------- compose


def test_compose_file_matches_the_compose_specification():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_and_dependencies():
    c = compose()
    services = c["services"]
    for name in ["rabbitmq", "postgres", "nats", "lb", *SERVICE_BINARIES]:
        assert name in services, f"service {name} missing"
    declared_volumes = set(c.get("volumes") or {})
    for name, s in services.items():
        for dep, how in (s.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
        for v in s.get("volumes") or []:
            source = v.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name} mounts undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        binary = compose_binary(s)
        if binary in SERVICE_BINARIES:
            assert "healthcheck" in s, f"{name} has no healthcheck"
            assert s.get("restart") == "unless-stopped", f"{name} must come back after a dependency restart"
    assert "-js" in services["nats"]["command"] or "--jetstream" in services["nats"]["command"]
    assert "management" in services["rabbitmq"]["image"]
    assert any("15672" in str(p) for p in services["rabbitmq"]["ports"])


def test_compose_environment_names_real_configuration_keys():
    for name, s in compose()["services"].items():
        binary = compose_binary(s)
        if binary is None:
            continue
        for var in s.get("environment") or {}:
            if var.startswith("CHAT__"):
                problem = env_problem(CONFIG_OF_BINARY[binary], var)
                assert problem is None, f"docker-compose.yml, {name}: {problem}"


def test_compose_healthchecks_probe_each_service_on_its_admin_port():
    for name, s in compose()["services"].items():
        if compose_binary(s) not in SERVICE_BINARIES:
            continue
        admin = s["environment"]["CHAT__ADMIN__LISTEN"]
        assert admin.startswith("0.0.0.0:"), f"{name}: admin port must listen beyond loopback"
        test = " ".join(s["healthcheck"]["test"])
        assert f"127.0.0.1:{port_of(admin)}/readyz" in test, f"{name}: healthcheck {test!r} is not its /readyz"


def test_compose_gateway_scales_behind_the_balancer():
    services = compose()["services"]
    gw = services["edge-gateway"]
    assert "ports" not in gw and "container_name" not in gw, (
        "fixed host ports or a container name stop `--scale edge-gateway=N`"
    )
    assert "CHAT__GATEWAY__ID" not in gw["environment"], "each replica needs its own gateway id"
    # "[ip:]host:container" → {host port: container port}
    published = {p.split(":")[-2]: p.split(":")[-1] for p in map(str, services["lb"]["ports"])}
    for port in ("6667", "6697", "8080"):
        assert port in published, f"the balancer does not publish {port}"
    # The balancer forwards to the ports the gateway listens on, checks its
    # admin port, and binds what compose publishes.
    cfg = HAPROXY.read_text()
    env = gw["environment"]
    listens = {port_of(env[k]) for k in ("CHAT__IRC__LISTEN", "CHAT__IRC__TLS_LISTEN", "CHAT__HTTP__LISTEN")}
    targets = {int(p) for p in re.findall(r"server-template \w+ \d+ edge-gateway:(\d+)", cfg)}
    assert targets == listens, f"haproxy targets {targets}, the gateway listens on {listens}"
    binds = {m for m in re.findall(r"^\s*bind :(\d+)", cfg, re.M)}
    for container_port in published.values():
        assert container_port in binds, f"compose publishes {container_port}, haproxy binds {binds}"
    assert f"check port {port_of(env['CHAT__ADMIN__LISTEN'])}" in cfg
    assert "uri /readyz" in cfg
    assert "resolvers docker" in cfg and "127.0.0.11" in cfg, "replicas found through Docker's DNS"
    # The certificate the gateway reads is the one tls-init writes.
    tls_init = services["tls-init"]["command"][-1]
    assert env["CHAT__IRC__TLS_CERT"] in tls_init and env["CHAT__IRC__TLS_KEY"] in tls_init
    assert gw["depends_on"]["tls-init"]["condition"] == "service_completed_successfully"


def test_compose_grace_periods_cover_the_drain():
    services = compose()["services"]
    gw_drain = rust_const_secs(ROOT / "edge-gateway" / "src" / "main.rs", "DRAIN_TIMEOUT")
    assert duration_secs(services["edge-gateway"]["stop_grace_period"]) >= gw_drain + 5
    router_drain = rust_const_secs(ROOT / "router-service" / "src" / "main.rs", "DRAIN_TIMEOUT")
    # partitions, then the registered-room writer, each within DRAIN_TIMEOUT
    assert duration_secs(services["router-service"]["stop_grace_period"]) >= 2 * router_drain + 5
    history_drain = rust_const_secs(ROOT / "history-service" / "src" / "main.rs", "DRAIN_TIMEOUT")
    assert duration_secs(services["history-service"]["stop_grace_period"]) >= history_drain + 5


# ------------------------------------------------------------ Kubernetes


def test_kustomization_lists_every_manifest():
    for directory, extra in ((K8S, set()), (K8S_DEPS, {"nats-values.yaml"})):
        listed = kustomization(directory)["resources"]
        assert len(listed) == len(set(listed)), f"{directory}: a resource listed twice"
        on_disk = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"} - extra
        assert set(listed) == on_disk, (
            f"{directory.relative_to(ROOT)}: kustomization.yaml lists {sorted(listed)}, "
            f"the directory has {sorted(on_disk)}"
        )


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_the_api_schemas(version):
    checked = 0
    for path, doc in manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path_in_doc = ".".join(str(p) for p in e.path)
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']} at {path_in_doc}: {e.message}")
        checked += 1
    assert checked >= 12


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) not installed")
def test_kustomization_renders_and_the_result_validates():
    out = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(rendered) == len(manifests())
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert re.fullmatch(r"chat-platform:[\w.-]+", c["image"]), f"image {c['image']} not pinned"


def test_kubernetes_deployments():
    deployments = of_kind("Deployment")
    assert set(deployments) == set(SERVICE_BINARIES)
    config = of_kind("ConfigMap")
    secrets = of_kind("Secret")
    for name, d in deployments.items():
        spec = d["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), f"{name}: selector misses its pods"
        assert pod["securityContext"]["runAsNonRoot"] is True
        (c,) = pod["containers"]
        assert c["command"] == [name]
        env = env_list(c)
        admin = port_of(env["CHAT__ADMIN__LISTEN"]["value"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["admin"] == admin, f"{name}: the admin port name points elsewhere than CHAT__ADMIN__LISTEN"
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}, (
            f"{name}: liveness on /healthz (a dependency outage must not restart the pod)"
        )
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert c["resources"]["limits"]["memory"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        # Every reference resolves: ours to the manifests, the others to the
        # documented operator secrets.
        for ref in c.get("envFrom", []):
            assert ref["configMapRef"]["name"] in config
        for var, e in env.items():
            secret_ref = e.get("valueFrom", {}).get("secretKeyRef")
            if secret_ref:
                sname, key = secret_ref["name"], secret_ref["key"]
                if sname in secrets:
                    assert key in secrets[sname].get("stringData", {}) | secrets[sname].get("data", {})
                else:
                    assert key in EXTERNAL_SECRET_KEYS.get(sname, ()), f"{name}: {sname}/{key} unknown"
            for used in re.findall(r"\$\((\w+)\)", e.get("value", "")):
                assert used in list(env)[: list(env).index(var)], f"{name}: {var} uses $({used}) before it is set"
        for v in pod.get("volumes", []):
            if "secret" in v:
                assert v["secret"]["secretName"] in set(secrets) | EXTERNAL_SECRETS
        # The URLs every service needs, from somewhere.
        assert "CHAT__AMQP__URL" in env
        if name != "edge-gateway":
            assert "CHAT__POSTGRES__URL" in env, f"{name} keeps its data in PostgreSQL"


def test_kubernetes_environment_names_real_configuration_keys():
    deployments = of_kind("Deployment")
    for name, d in deployments.items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        for var in env_list(c):
            if var.startswith("CHAT__"):
                problem = env_problem(CONFIG_OF_BINARY[name], var)
                assert problem is None, f"deploy/kubernetes, {name}: {problem}"
    # A shared ConfigMap key must mean something to a service that reads it.
    for key in of_kind("ConfigMap")["chat-config"]["data"]:
        readers = [n for n in deployments if env_problem(CONFIG_OF_BINARY[n], key) is None]
        assert readers, f"chat-config key {key} is no service's configuration key"


def test_kubernetes_grace_periods_cover_the_drain():
    d = of_kind("Deployment")
    gw_pod = d["edge-gateway"]["spec"]["template"]["spec"]
    (gw,) = gw_pod["containers"]
    pre_stop = gw["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    gw_drain = rust_const_secs(ROOT / "edge-gateway" / "src" / "main.rs", "DRAIN_TIMEOUT")
    # preStop runs inside the grace period, before SIGTERM.
    assert gw_pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + gw_drain + 5
    router_drain = rust_const_secs(ROOT / "router-service" / "src" / "main.rs", "DRAIN_TIMEOUT")
    assert d["router-service"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 2 * router_drain + 5
    history_drain = rust_const_secs(ROOT / "history-service" / "src" / "main.rs", "DRAIN_TIMEOUT")
    assert d["history-service"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= history_drain + 5


def test_kubernetes_scaling_disruption_and_exposure():
    deployments = of_kind("Deployment")
    hpas = of_kind("HorizontalPodAutoscaler")
    assert {"edge-gateway", "router-service"} <= set(hpas)
    for name, h in hpas.items():
        target = h["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], (
            f"{target['name']}: `replicas` beside an autoscaler is reset on every apply"
        )
        assert h["spec"]["minReplicas"] >= 2
    pdbs = of_kind("PodDisruptionBudget")
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs.values() if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, f"{name}: {len(covering)} disruption budgets"
    services = of_kind("Service")
    lb = services["edge-gateway"]
    assert lb["spec"]["type"] == "LoadBalancer"
    gw = deployments["edge-gateway"]
    assert lb["spec"]["selector"].items() <= gw["spec"]["template"]["metadata"]["labels"].items()
    (c,) = gw["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = env_list(c)
    assert ports["irc"] == port_of(env["CHAT__IRC__LISTEN"]["value"])
    assert ports["irc-tls"] == port_of(env["CHAT__IRC__TLS_LISTEN"]["value"])
    assert ports["http"] == port_of(env["CHAT__HTTP__LISTEN"]["value"])
    exposed = {p["port"]: p["targetPort"] for p in lb["spec"]["ports"]}
    assert exposed == {6667: "irc", 6697: "irc-tls", 8080: "http"}
    # TLS files where the gateway looks for them.
    mount = c["volumeMounts"][0]["mountPath"]
    assert env["CHAT__IRC__TLS_CERT"]["value"].startswith(mount + "/")


def test_kubernetes_dependencies_provide_what_the_manifests_read():
    deps = {d["kind"]: d for f in kustomization(K8S_DEPS)["resources"] for d in load_yaml_docs(K8S_DEPS / f)}
    rabbit = deps["RabbitmqCluster"]
    assert rabbit["apiVersion"].startswith("rabbitmq.com/")
    # The operator names its secret <cluster>-default-user.
    assert f"{rabbit['metadata']['name']}-default-user" in EXTERNAL_SECRET_KEYS
    pg = deps["Cluster"]
    assert pg["apiVersion"].startswith("postgresql.cnpg.io/")
    # CloudNativePG names the application secret <cluster>-app.
    assert f"{pg['metadata']['name']}-app" in EXTERNAL_SECRET_KEYS
    assert pg["spec"]["bootstrap"]["initdb"]["database"] == "chat"
    config = of_kind("ConfigMap")["chat-config"]["data"]
    assert config["CHAT__POSTGRES__CREATE_DATABASE"] == "false", "the app user may not create databases"
    nats = yaml.safe_load((K8S_DEPS / "nats-values.yaml").read_text())
    assert nats["config"]["jetstream"]["enabled"] is True
    release = re.search(r"helm install ([\w-]+) nats/nats", (K8S_DEPS / "nats-values.yaml").read_text()).group(1)
    assert config["CHAT__NATS__URL"] == f"nats://{release}:4222"
    readme = (K8S / "README.md").read_text()
    for name in EXTERNAL_SECRETS | {release}:
        assert name in readme, f"deploy/kubernetes/README.md does not say where {name} comes from"
