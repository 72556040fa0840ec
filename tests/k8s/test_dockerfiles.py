"""Dockerfiles: pinned base, every COPY source exists and is in the build context, non-root
user, only the component's extra installed, its dependencies in a layer that an edit of the
code does not rebuild, the build's own check refusing what the image must not carry, and each
entrypoint imports with only that extra (a fresh interpreter that refuses every other
distribution imports it for real)."""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfiles import (
    IMAGES,
    IMPORT_PROBE,
    PACKAGE_DIRS,
    PROJECT_PACKAGES,
    SHARED,
    build_args,
    component_modules,
    copied_python_files,
    dockerignore,
    extra_closure,
    foreign_imports,
    ignored,
    image,
    layer_order_problems,
    module_owners,
    package,
    parse_dockerfile,
)
from k8s_support import ROOT, containers, pod_specs, render, split_image

pytestmark = pytest.mark.k8s

NAMES = sorted(IMAGES)
ENTRY = {  # what the charts run in each image (command prefix)
    "predictor": ["python", "-m", "model"],
    "transformer": ["python", "-m", "transformer"],
    "frontend": ["streamlit", "run", "frontend/app.py"],
}


def test_make_builds_each_image_as_these_checks_read_it() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "-s", "images", "DOCKER=echo docker", "IMAGE_TAG=t"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    builds = {}
    for line in out.stdout.splitlines():
        if line.startswith("docker build "):
            words = line.split()
            tag = words[words.index("-t") + 1]
            builds[tag.split("/")[1].split(":")[0]] = words
    assert sorted(builds) == NAMES
    for name, words in builds.items():
        assert words[words.index("-f") + 1] == IMAGES[name][0]
        given = {
            words[i + 1].split("=")[0]: words[i + 1].split("=")[1]
            for i, w in enumerate(words)
            if w == "--build-arg"
        }
        assert given == build_args(name), name
        if IMAGES[name][0] == SHARED:
            assert words[words.index("--target") + 1] == name


@pytest.mark.parametrize("name", sorted(n for n in NAMES if IMAGES[n][0] == SHARED))
def test_shared_dockerfile_targets_check_their_component(name: str) -> None:
    # A COMPONENT that is not the target's copies another folder: the target's own check
    # imports its component, so such a build fails.
    check = image(name).runs[-1]
    assert f"import {package(name)}" in check, check
    other = "frontend" if name != "frontend" else "model"
    wrong = parse_dockerfile(ROOT / SHARED, name, {"COMPONENT": other})
    assert f"{package(name)}/" not in {t for t in wrong.targets}


@pytest.mark.parametrize("name", NAMES)
def test_base_image_is_pinned_and_matches_the_python_of_the_lock(name: str) -> None:
    df = image(name)
    repo, tag, _digest = split_image(df.base)
    assert repo == "python" and tag, df.base
    assert tag.startswith(f"{sys.version_info.major}.{sys.version_info.minor}."), tag
    assert tag.count(".") >= 2, f"{df.base}: pin the patch release"


@pytest.mark.parametrize("name", NAMES)
def test_every_copy_source_exists_in_the_build_context(name: str) -> None:
    df = image(name)
    patterns = dockerignore()
    assert df.copies
    for sources in df.copies:
        for src in sources:
            matches = [m for m in glob.glob(src, root_dir=ROOT) if not ignored(m, patterns)]
            if "[" in src:  # an optional file (dvc.loc[k]): fine when absent
                continue
            assert matches, f"{IMAGES[name][0]}: COPY {src} matches nothing in the context"


@pytest.mark.parametrize("name", NAMES)
def test_image_copies_only_its_own_packages(name: str) -> None:
    df = image(name)
    own = IMAGES[name][2]
    copied = {s.strip("/").split("/")[0] for sources in df.copies for s in sources}
    assert copied & PROJECT_PACKAGES == own - {"bukva"}
    assert "src" in copied


@pytest.mark.parametrize("name", NAMES)
def test_runs_as_the_charts_non_root_user(name: str) -> None:
    df = image(name)
    uid = df.user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, df.user
    assert int(uid) == 10001  # charts/*/values.yaml runAsUser


@pytest.mark.parametrize("name", NAMES)
def test_installs_only_its_extra_from_the_lock(name: str) -> None:
    extra = IMAGES[name][1]
    installs = [r for r in image(name).runs if "uv pip install --system" in r]
    [deps] = [r for r in installs if "-r pyproject.toml" in r]
    assert "-c requirements.lock" in deps
    assert re.search(rf"--extra {extra}(\s|$)", deps) and deps.count("--extra ") == 1, deps
    [project] = [r for r in installs if r != deps]
    assert re.match(r"uv pip install --system --no-deps \.(\s|$)", project), project
    wants_torch = "torch" in extra_closure(extra)
    assert ("download.pytorch.org/whl/cpu" in " ".join(map(" ".join, image(name).steps))) == (
        wants_torch
    )


@pytest.mark.parametrize("name", NAMES)
def test_dependencies_are_installed_before_the_code_is_copied(name: str) -> None:
    assert layer_order_problems(image(name)) == []


def test_layer_order_check_can_fail(tmp_path: Path) -> None:
    # The layout the images had: code copied first, one install of the project with its extra.
    old = tmp_path / "Dockerfile"
    old.write_text(
        "FROM python:3.11.13-slim-bookworm\n"
        "COPY pyproject.toml requirements.lock README.md ./\n"
        "COPY src/ src/\n"
        'RUN uv pip install --system -c requirements.lock ".[model]"\n'
    )
    assert layer_order_problems(parse_dockerfile(old)) == [
        "0 dependency installs (`uv pip install --system ... -r pyproject.toml`), not 1"
    ]
    old.write_text(
        "FROM python:3.11.13-slim-bookworm\n"
        "COPY pyproject.toml requirements.lock README.md ./\n"
        "COPY src/ src/\n"
        "RUN uv pip install --system -c requirements.lock -r pyproject.toml --extra model\n"
        "RUN uv pip install --system .\n"
    )
    assert layer_order_problems(parse_dockerfile(old)) == [
        "COPY README.md before the dependency install: every edit of it reinstalls",
        "COPY src/ before the dependency install: every edit of it reinstalls",
        "RUN uv pip install --system ....: installs dependencies again (add --no-deps)",
    ]


# What the build's own check (the last RUN's `python -c`) refuses in each light image, as the
# Dockerfile's comment says.
REFUSED = {"predictor": {"torch"}, "transformer": {"torch"}, "frontend": {"torch", "kserve"}}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_build_check_refuses_what_the_image_must_not_carry(name: str) -> None:
    extra = IMAGES[name][1]
    check = image(name).runs[-1]
    for module in REFUSED[name]:
        assert f"u.find_spec('{module}') is None" in check, f"{name}: the check skips {module}"
        assert module not in extra_closure(extra)


@pytest.mark.parametrize("name", ["transformer", "frontend"])
def test_light_images_carry_no_torch(name: str) -> None:
    closure = extra_closure(IMAGES[name][1])
    assert "torch" not in closure and "mlflow" not in closure
    assert "torch" in extra_closure("pipelines")


@pytest.mark.parametrize("name", sorted(ENTRY))
def test_entrypoint_and_ports_match_the_chart(name: str) -> None:
    df = image(name)
    assert df.entrypoint == ENTRY[name]
    used = [
        (c, p)
        for p in pod_specs(render("bukva"))
        for c in containers(p.spec)
        if split_image(c["image"])[0] == f"bukva/{name}" and "test" not in p.owner
    ]
    assert used, f"no chart container runs bukva/{name}"
    for c, _pod in used:
        assert c["command"] == ENTRY[name]
        assert {p["containerPort"] for p in c["ports"]} <= df.exposes


@pytest.mark.parametrize("name", NAMES)
def test_source_imports_only_what_the_extra_installs(name: str) -> None:
    files = copied_python_files(image(name))
    assert files
    assert not foreign_imports(IMAGES[name][1], files, entry=package(name))


def test_foreign_import_check_can_fail() -> None:
    # The pipelines import torch; the transformer extra does not install it.
    bad = foreign_imports("transformer", sorted(PACKAGE_DIRS["pipelines"].glob("*.py")))
    assert any(b.startswith("torch") for b in bad)
    # The predictor imports torch only where it is optional (model.runtime, to export ONNX).
    assert not any(
        b.startswith("torch") for b in foreign_imports("model", [ROOT / "model" / "runtime.py"])
    )
    # pipelines without the core it imports (the network lives in src/bukva)
    bad = foreign_imports("pipelines", sorted(PACKAGE_DIRS["pipelines"].glob("*.py")))
    assert any(b.startswith("bukva.network: not copied") for b in bad)


def _probe(extra: str, own: set[str], modules: list[str], parsers: list[str]):
    cfg = {
        "closure": sorted(extra_closure(extra)),
        "own": sorted(own),
        "project": sorted(PROJECT_PACKAGES),
        "owners": {m: sorted(d) for m, d in module_owners().items()},
        "modules": modules,
        "parsers": parsers,
    }
    return subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, json.dumps(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )


@pytest.mark.parametrize("name", NAMES)
def test_entrypoint_imports_with_only_its_extra(name: str) -> None:
    _path, extra, own = IMAGES[name]
    folder = package(name)
    modules = component_modules(folder)
    parsers = [f"{folder}.__main__"] if (PACKAGE_DIRS[folder] / "__main__.py").exists() else []
    out = _probe(extra, own, modules, parsers)
    assert out.returncode == 0, out.stderr[-3000:]


def test_import_probe_refuses_a_distribution_outside_the_extra() -> None:
    out = _probe("transformer", {"bukva", "transformer"}, ["bukva.settings", "torch"], [])
    assert out.returncode != 0
    assert "torch needs" in out.stderr


def test_trainer_image_can_run_the_mlflow_server_and_bucket_init() -> None:
    # bukva-platform runs `mlflow server` (PostgreSQL backend, S3 artifacts) and the boto3
    # bucket-init script from the trainer image: their imports must be in its extra.
    own = IMAGES["trainer"][2]
    modules = ["mlflow.server", "mlflow.server.fastapi_app", "psycopg", "boto3", "uvicorn"]
    out = _probe("pipelines", own, modules, [])
    assert out.returncode == 0, out.stderr[-3000:]
