"""Rendering and inspection helpers for the Kubernetes checks (`make k8s-check`).

Everything is offline: charts are rendered with `helm template`, overlays with
`kubectl kustomize`, and objects are walked as plain dicts. The render matrix below is what
every test iterates over: each chart with its default and its kind values, and each
kustomize overlay.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
OVERLAYS = ROOT / "kustomize" / "overlays"
NAMESPACE = "bukva"
# Release names scripts/cluster-up.sh installs with (they fix the Service names).
RELEASES = {"bukva-platform": "bukva-platform", "bukva": "bukva"}
# What every render of a chart sets, as scripts/cluster-*.sh do: the app serves a declared
# model version (there is no default: the chart never floats on an alias).
REQUIRED_SETS = {"bukva": ("predictor.modelVersion=1",), "bukva-platform": ()}

# Workload kinds and where their pod spec lives.
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "Pod": ("spec",),
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "InferenceService"}
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")


def versions() -> dict[str, str]:
    """k8s/versions.env as a dict (the one place versions are pinned)."""
    out = {}
    for line in (ROOT / "k8s" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


@functools.cache
def tool(name: str) -> str:
    """Path of helm or kubectl (PATH's, or the pinned one scripts/get-helm.sh unpacks)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "get-helm.sh"), name],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    path = out.stdout.strip().splitlines()[-1]
    return path if Path(path).is_absolute() else str(ROOT / path)


def run_tool(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run helm/kubectl (args[0] names the tool); never raises, the caller checks returncode."""
    return subprocess.run(
        [tool(args[0]), *args[1:]], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def make_images(env: dict[str, str] | None = None) -> list[str]:
    """The image references `make images` builds, as `make print-images` lists them (under
    `env`; this process's environment when None)."""
    out = subprocess.run(
        ["make", "--no-print-directory", "-s", "print-images"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return out.stdout.split()


def load_docs(text: str) -> list[dict[str, Any]]:
    """All non-empty YAML documents of a multi-document stream."""
    return [d for d in yaml.safe_load_all(text) if d]


@functools.cache
def _render(chart: str, values: tuple[str, ...], sets: tuple[str, ...]) -> tuple[dict, ...]:
    args = ["helm", "template", RELEASES[chart], str(CHARTS / chart), "-n", NAMESPACE]
    for v in values:
        args += ["-f", str(CHARTS / chart / v)]
    for s in REQUIRED_SETS[chart] + sets:
        args += ["--set", s]
    out = run_tool(args)
    if out.returncode != 0:
        raise RenderError(f"helm template {chart} {values} {sets}: {out.stderr.strip()}")
    return tuple(load_docs(out.stdout))


class RenderError(RuntimeError):
    """helm template or kustomize failed; the message carries the tool's error."""


def render(chart: str, values: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> list[dict]:
    """Objects `helm template` renders for a chart (cached per arguments)."""
    return list(_render(chart, tuple(values), tuple(sets)))


@functools.cache
def _kustomize(overlay: str) -> tuple[dict, ...]:
    out = run_tool(["kubectl", "kustomize", str(OVERLAYS / overlay)])
    if out.returncode != 0:
        raise RenderError(f"kustomize {overlay}: {out.stderr.strip()}")
    return tuple(load_docs(out.stdout))


def kustomize(overlay: str) -> list[dict]:
    """Objects an overlay builds to (cached)."""
    return list(_kustomize(overlay))


def overlays() -> list[str]:
    """Every overlay under kustomize/overlays/."""
    return sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())


@dataclass(frozen=True)
class Case:
    """One rendered set: a chart with values files, or a kustomize overlay."""

    name: str
    chart: str | None = None
    values: tuple[str, ...] = ()
    overlay: str | None = None

    def objects(self) -> list[dict]:
        if self.overlay:
            return kustomize(self.overlay)
        assert self.chart is not None
        return render(self.chart, self.values)


def cases() -> list[Case]:
    """The render matrix: both charts with default and kind values, and every overlay."""
    out = []
    for chart in RELEASES:
        out.append(Case(f"{chart}:default", chart=chart))
        out.append(Case(f"{chart}:kind", chart=chart, values=("values-kind.yaml",)))
    out += [Case(f"kustomize:{o}", overlay=o) for o in overlays()]
    return out


def hook_secrets(objects: list[dict]) -> list[dict]:
    """The Secrets the platform's secrets hook Job creates on install (none in the render: the
    Job makes them in the cluster; test_secrets.py runs it), each with its keys, valueless."""
    import json

    spec = next(
        (
            json.loads(o["data"]["spec.json"])
            for o in objects
            if o["kind"] == "ConfigMap" and "spec.json" in o.get("data", {})
        ),
        {"secrets": []},
    )
    return [
        {"kind": "Secret", "metadata": {"name": s["name"]}, "data": dict.fromkeys(s["keys"], "")}
        for s in spec["secrets"]
    ]


def environments() -> dict[str, list[dict]]:
    """What one install puts in the namespace: platform (with the Secrets its hook Job
    creates) + app + training overlay, per env."""
    default = render("bukva-platform")
    kind = render("bukva-platform", ("values-kind.yaml",))
    return {
        "default": default + hook_secrets(default) + render("bukva") + kustomize("cluster"),
        "kind": kind
        + hook_secrets(kind)
        + render("bukva", ("values-kind.yaml",))
        + kustomize("kind"),
    }


@dataclass
class PodSpec:
    """A pod spec found in a rendered object, with where it came from."""

    owner: str  # Kind/name[/component]
    kind: str
    spec: dict
    annotations: dict
    labels: dict


def pod_specs(objects: list[dict]) -> Iterator[PodSpec]:
    """Every pod spec: workloads' templates and each InferenceService component."""
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        if kind in POD_SPEC_PATHS:
            spec: Any = obj
            for key in POD_SPEC_PATHS[kind]:
                spec = spec[key]
            meta = obj["metadata"] if kind == "Pod" else obj["spec"]["template"].get("metadata", {})
            yield PodSpec(
                f"{kind}/{name}",
                kind,
                spec,
                meta.get("annotations") or {},
                meta.get("labels") or {},
            )
        elif kind == "InferenceService":
            for comp in KSERVE_COMPONENTS:
                if comp in obj["spec"]:
                    c = obj["spec"][comp]
                    yield PodSpec(
                        f"{kind}/{name}/{comp}",
                        kind,
                        c,
                        c.get("annotations") or {},
                        c.get("labels") or {},
                    )


def containers(spec: dict, init: bool = True) -> list[dict]:
    """Containers (and init containers) of a pod spec."""
    return list(spec.get("containers", [])) + (list(spec.get("initContainers", [])) if init else [])


def kserve_services(objects: list[dict]) -> list[dict]:
    """The Services KServe creates in Standard mode: <isvc>-<component>, port 80 -> container.

    They are not in any rendered manifest (the controller makes them), so wiring checks
    model them from the InferenceService, as KServe v0.20's raw-deployment reconciler does.
    """
    out = []
    for obj in objects:
        if obj.get("kind") != "InferenceService":
            continue
        for comp in KSERVE_COMPONENTS:
            if comp not in obj["spec"]:
                continue
            ports = obj["spec"][comp]["containers"][0].get("ports") or [{"containerPort": 8080}]
            out.append(
                {
                    "kind": "Service",
                    "metadata": {"name": f"{obj['metadata']['name']}-{comp}"},
                    "spec": {"ports": [{"port": 80, "targetPort": ports[0]["containerPort"]}]},
                }
            )
    return out


IMAGE_RE = re.compile(
    r"^(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    m = IMAGE_RE.match(ref)
    if not m:
        raise ValueError(f"not an image reference: {ref!r}")
    return m["repo"], m["tag"], m["digest"]
