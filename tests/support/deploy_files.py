"""Read the deployment files: compose.yaml, the Dockerfiles, the kustomize builds.

Every command line, environment variable and probe they hold is pulled out here so that the
tests can hold them against the code: an entry point that exists, a setting the code reads,
an endpoint the gateway serves. No container engine and no cluster are involved.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from tests.support.processes import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
DOCKER_DIR = REPO_ROOT / "deploy" / "docker"
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("base", "overlays/cpu", "overlays/gpu")
KUBERNETES_VERSION = "1.32.0"
"""The Kubernetes version the manifests are validated against (kubernetes-validate)."""


def tool(name: str) -> str | None:
    """A command-line tool: from this Python's environment first (the dev extra), else PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


@dataclass(frozen=True)
class CommandLine:
    where: str
    """e.g. ``compose.yaml services.tasks.healthcheck``."""
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Container:
    """A container of a built manifest: its pod's kind/name and the container spec."""

    workload: str
    kind: str
    pod: dict[str, Any]
    spec: dict[str, Any]


# ---------------------------------------------------------------------- compose
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def compose_commands() -> list[CommandLine]:
    found = []
    for name, service in compose()["services"].items():
        if "command" in service:
            found.append(CommandLine(f"compose.yaml {name}.command", _argv(service["command"])))
        test = service.get("healthcheck", {}).get("test")
        if test:
            found.append(CommandLine(f"compose.yaml {name}.healthcheck", _healthcheck_argv(test)))
    return found


def _healthcheck_argv(test: list[str] | str) -> tuple[str, ...]:
    if isinstance(test, str):
        return ("sh", "-c", test)
    if test[0] == "CMD":
        return tuple(test[1:])
    if test[0] == "CMD-SHELL":
        return ("sh", "-c", test[1])
    raise AssertionError(f"unexpected healthcheck test {test!r}")


def _argv(command: list[str] | str) -> tuple[str, ...]:
    return tuple(command) if isinstance(command, list) else tuple(shlex.split(command))


# ---------------------------------------------------------------------- dockerfiles
def dockerfiles() -> list[Path]:
    return sorted(DOCKER_DIR.glob("*.Dockerfile"))


def parse_dockerfile(path: Path) -> DockerfileParser:
    parser = DockerfileParser(path=str(path), cache_content=True)
    parser.content = path.read_text(encoding="utf-8")
    return parser


def final_stage(parser: DockerfileParser) -> list[dict[str, Any]]:
    """The instructions from the last FROM on."""
    structure = parser.structure
    last_from = max(i for i, item in enumerate(structure) if item["instruction"] == "FROM")
    return structure[last_from:]


def _exec_form(value: str) -> tuple[str, ...]:
    text = value.strip()
    if text.startswith("CMD "):
        text = text[4:].strip()
    if text.startswith("["):
        return tuple(yaml.safe_load(text))
    return ("sh", "-c", text)


def dockerfile_commands() -> list[CommandLine]:
    found = []
    for path in dockerfiles():
        for item in final_stage(parse_dockerfile(path)):
            if item["instruction"] == "CMD":
                found.append(CommandLine(f"{path.name} CMD", _exec_form(item["value"])))
            if item["instruction"] == "HEALTHCHECK":
                value = item["value"]
                found.append(
                    CommandLine(f"{path.name} HEALTHCHECK", _exec_form(value[value.index("CMD") :]))
                )
    return found


def dockerfile_env(path: Path) -> dict[str, str]:
    return dict(parse_dockerfile(path).envs)


# ---------------------------------------------------------------------- kubernetes
def kustomize(target: str | Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of a folder under deploy/k8s (or any folder), as documents."""
    kubectl = tool("kubectl")
    assert kubectl is not None
    folder = K8S_DIR / target if isinstance(target, str) else target
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {folder} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return obj["spec"]["template"]["spec"]
    return None


def containers(objects: list[dict[str, Any]]) -> Iterator[Container]:
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        for spec in [*pod.get("initContainers", []), *pod["containers"]]:
            yield Container(obj["metadata"]["name"], obj["kind"], pod, spec)


def manifest_commands(objects: list[dict[str, Any]], label: str) -> list[CommandLine]:
    found = []
    for c in containers(objects):
        where = f"{label} {c.kind}/{c.workload} {c.spec['name']}"
        if "command" in c.spec:
            found.append(
                CommandLine(f"{where} command", (*c.spec["command"], *c.spec.get("args", [])))
            )
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = c.spec.get(probe, {}).get("exec", {}).get("command")
            if command:
                found.append(CommandLine(f"{where} {probe}", tuple(command)))
        pre_stop = c.spec.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        if pre_stop:
            found.append(CommandLine(f"{where} preStop", tuple(pre_stop)))
    return found


def shell_pieces(argv: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``sh -c "a && b | c"`` → the simple commands a, b, c; anything else → itself."""
    if argv[:2] != ("sh", "-c"):
        return [argv]
    pieces = []
    for chunk in argv[2].replace("&&", "|").split("|"):
        words = tuple(shlex.split(chunk))
        if words:
            pieces.append(words)
    return pieces


def repo_relative(path: Path) -> str:
    return os.path.relpath(path, REPO_ROOT)
