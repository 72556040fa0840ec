"""Policy for every pod the manifests run: non-root, no privilege escalation, requests and
limits, readiness and liveness probes on long-running containers, pinned images, no
service-account token but where the pod calls the Kubernetes API (Prometheus, the secrets hook
Job), no Secret
expanded into a command line (visible in `ps` and the pod's spec), and no plaintext
credentials (in manifests or in any values file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from k8s_support import (
    CHARTS,
    LONG_RUNNING,
    Case,
    PodSpec,
    cases,
    containers,
    pod_specs,
    split_image,
)

pytestmark = pytest.mark.k8s

SECRET_NAME_RE = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|PASSWD|CREDENTIAL", re.I)
# Pods that call the Kubernetes API, by their owner's name: Prometheus lists pods, the secrets
# hook Job creates the platform's Secrets (each its own Role).
NEEDS_API_TOKEN = re.compile(r"-prometheus$|^Job/bukva-platform-secrets$")


def violations(pod: PodSpec) -> list[str]:
    """Policy violations of one pod spec (empty: compliant)."""
    out = []
    psc = pod.spec.get("securityContext") or {}
    token = pod.spec.get("automountServiceAccountToken")
    if NEEDS_API_TOKEN.search(pod.owner):
        if token is not True or not pod.spec.get("serviceAccountName"):
            out.append(f"{pod.owner}: needs its own service account's token")
    elif token is not False:
        out.append(f"{pod.owner}: automountServiceAccountToken is not false")
    for c in containers(pod.spec):
        where = f"{pod.owner}/{c['name']}"
        csc = c.get("securityContext") or {}
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            out.append(f"{where}: runAsNonRoot is not true")
        if csc.get("runAsUser", psc.get("runAsUser")) in (0, None):
            out.append(f"{where}: no non-zero runAsUser")
        if csc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}: allowPrivilegeEscalation is not false")
        if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
            out.append(f"{where}: capabilities not dropped")
        res = c.get("resources") or {}
        for bound in ("requests", "limits"):
            for what in ("cpu", "memory"):
                if what not in (res.get(bound) or {}):
                    out.append(f"{where}: no {what} {bound[:-1]}")
        if pod.kind in LONG_RUNNING and c in pod.spec.get("containers", []):
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    out.append(f"{where}: no {probe}")
        _repo, tag, digest = split_image(c["image"])
        if not digest and (not tag or tag == "latest"):
            out.append(f"{where}: image {c['image']} is not pinned")
        secret_vars = set()
        for e in c.get("env", []):
            if SECRET_NAME_RE.search(e["name"]) and "value" in e:
                out.append(f"{where}: {e['name']} is a plaintext value")
            if "secretKeyRef" in (e.get("valueFrom") or {}):
                secret_vars.add(e["name"])
        for arg in [*c.get("command", []), *c.get("args", [])]:
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(arg)):
                if var in secret_vars:
                    out.append(f"{where}: Secret {var} expanded into its command line")
    return out


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_every_pod_follows_the_policy(case: Case) -> None:
    pods = list(pod_specs(case.objects()))
    assert pods
    bad = [v for pod in pods for v in violations(pod)]
    assert not bad, "\n".join(bad)


def test_policy_catches_violations() -> None:
    pod = PodSpec(
        "Deployment/x",
        "Deployment",
        {
            "containers": [
                {
                    "name": "c",
                    "image": "nginx:latest",
                    "command": ["server", "--db=postgresql://u:$(PGPASSWORD)@db/x"],
                    "env": [
                        {"name": "DB_PASSWORD", "value": "hunter2"},
                        {
                            "name": "PGPASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}},
                        },
                    ],
                    "resources": {"requests": {"cpu": "1"}},
                }
            ]
        },
        {},
        {},
    )
    found = "\n".join(violations(pod))
    for expected in (
        "runAsNonRoot",
        "runAsUser",
        "allowPrivilegeEscalation",
        "capabilities",
        "no memory request",
        "no cpu limit",
        "no readinessProbe",
        "no livenessProbe",
        "not pinned",
        "DB_PASSWORD is a plaintext value",
        "Secret PGPASSWORD expanded into its command line",
        "automountServiceAccountToken is not false",
    ):
        assert expected in found


def _walk(node: object, path: str = "") -> list[tuple[str, object]]:
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _walk(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [kv for i, v in enumerate(node) for kv in _walk(v, f"{path}[{i}]")]
    return [(path, node)]


VALUES_FILES = sorted(CHARTS.glob("*/values*.yaml"))


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_values_files_hold_no_credentials(values: Path) -> None:
    for path, value in _walk(yaml.safe_load(values.read_text())):
        leaf = path.rsplit(".", 1)[-1]
        if re.search(r"password|secretKey|accessKey|token", leaf, re.I):
            assert value in ("", None), f"{values}: {path} has a default credential"


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_no_manifest_holds_a_secret(case: Case) -> None:
    """Credentials are made in the cluster (the platform's secrets hook Job: test_secrets.py)
    or brought as existing Secrets, never written in a rendered manifest."""
    secrets = [o["metadata"]["name"] for o in case.objects() if o["kind"] == "Secret"]
    assert not secrets, f"Secrets in the manifests: {secrets}"
