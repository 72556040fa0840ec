"""The platform's credentials: made once in the cluster by its secrets hook Job, never by a
render. `helm template` (what a GitOps tool applies) gives the same objects every time and no
credential; a simulated install (the rendered Job's container run against a stand-in for the
Kubernetes API, secrets_hook.py) creates every Secret the pods read, and a second run (an
upgrade, a GitOps sync) keeps them. That the real API server admits the Job's create-only Role
and its in-cluster TLS is for a real cluster to show (docs/kubernetes.md)."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from k8s_support import CHARTS, _render, containers, environments, pod_specs, render
from secrets_hook import HOOK, SecretsApi, run_secrets_hook

pytestmark = pytest.mark.k8s

VALUES = {"default": (), "kind": ("values-kind.yaml",)}
CLIENTS = ("frontend", "training", "mlflow", "predictor")
HOOK_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job"}


def _hook_objects(objects: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objects if o["metadata"]["name"] == HOOK}


def _spec(objects: list[dict]) -> dict:
    return json.loads(_hook_objects(objects)["ConfigMap"]["data"]["spec.json"])


def _read_secrets(objects: list[dict]) -> dict[str, set[str]]:
    """name -> keys of every bukva-platform Secret the pods of one install read."""
    out: dict[str, set[str]] = {}
    for pod in pod_specs(objects):
        for v in pod.spec.get("volumes", []):
            if "secret" in v:
                out.setdefault(v["secret"]["secretName"], set())
        for c in containers(pod.spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    out.setdefault(ref["name"], set()).add(ref["key"])
            for e in c.get("envFrom", []):
                if "secretRef" in e:
                    out.setdefault(e["secretRef"]["name"], set())
    return {k: v for k, v in out.items() if k.startswith("bukva-platform-")}


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_a_render_holds_no_credential_and_never_changes(values: tuple[str, ...]) -> None:
    """Two renders (two `helm template` runs, two GitOps syncs) are the same objects: nothing
    random is rendered, so a re-render neither rotates a key nor shows drift."""
    first = list(_render.__wrapped__("bukva-platform", values, ()))
    second = list(_render.__wrapped__("bukva-platform", values, ()))
    assert first == second
    assert not [o for o in first if o["kind"] == "Secret"]
    spec = _spec(first)
    for secret in spec["secrets"]:  # shapes of values, never a value
        for key in secret["keys"].values():
            assert set(key) <= {"alphabet", "length", "prefix"}, key


@pytest.mark.parametrize("env", ["default", "kind"])
def test_the_hook_makes_every_secret_the_pods_read(env: str) -> None:
    objects = environments()[env]
    spec = {s["name"]: set(s["keys"]) for s in _spec(objects)["secrets"]}
    read = _read_secrets(objects)
    assert read, "no pod reads a platform Secret"
    for name, keys in read.items():
        assert name in spec, f"pods read Secret {name}, which nothing makes"
        assert keys <= spec[name], (name, keys - spec[name])


def test_the_hook_runs_first_with_the_right_to_create_secrets_only() -> None:
    hook = _hook_objects(render("bukva-platform"))
    assert set(hook) == HOOK_KINDS
    weights = {}
    for kind, obj in hook.items():
        notes = obj["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade", kind
        assert "before-hook-creation" in notes["helm.sh/hook-delete-policy"], kind
        weights[kind] = int(notes["helm.sh/hook-weight"])
    # its account, rights and script exist before the Job starts
    assert all(weights[k] < weights["Job"] for k in HOOK_KINDS - {"Job"}), weights
    assert hook["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    ]
    binding = hook["RoleBinding"]
    assert binding["roleRef"]["name"] == HOOK
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": HOOK, "namespace": "bukva"}]
    assert hook["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == HOOK
    script = hook["ConfigMap"]["data"]["ensure_secrets.py"]
    assert script == (CHARTS / "bukva-platform" / "files" / "ensure_secrets.py").read_text()


def _check_shapes(data: dict[str, dict[str, str]]) -> None:
    lower, alnum = string.ascii_lowercase + string.digits, string.ascii_letters + string.digits
    root = data["bukva-platform-s3"]
    assert re.fullmatch(f"bukva[{lower}]{{12}}", root["AWS_ACCESS_KEY_ID"])
    for client in CLIENTS:
        user = data[f"bukva-platform-s3-{client}"]
        assert re.fullmatch(f"{client}-[{lower}]{{8}}", user["AWS_ACCESS_KEY_ID"])
    for name, keys in data.items():
        secret = keys.get("AWS_SECRET_ACCESS_KEY") or keys["password"]
        assert re.fullmatch(f"[{alnum}]{{32,40}}", secret), name
    values = [v for keys in data.values() for v in keys.values()]
    assert len(set(values)) == len(values), "a value made twice"


def test_an_install_creates_each_secret_once_and_reruns_keep_them(tmp_path: Path) -> None:
    """Install, then an upgrade (or a GitOps sync: a fresh render, the hook run again): the
    same Secrets, unchanged. A second cluster's install gets its own values."""
    api = SecretsApi()
    try:
        objects = list(_render.__wrapped__("bukva-platform", (), ()))
        done = run_secrets_hook(objects, api, tmp_path / "install")
        assert done.returncode == 0, done.stderr
        installed = api.data()
        assert set(installed) == {s["name"] for s in _spec(objects)["secrets"]}
        assert done.stdout.count(": created") == len(installed)
        _check_shapes(installed)
        labels = api.secrets[("bukva", "bukva-platform-postgres")]["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "bukva-platform"
        assert labels["app.kubernetes.io/component"] == "postgres"

        again = list(_render.__wrapped__("bukva-platform", (), ()))
        done = run_secrets_hook(again, api, tmp_path / "upgrade")
        assert done.returncode == 0, done.stderr
        assert done.stdout.count(": exists, kept as it is") == len(installed)
        assert api.data() == installed
    finally:
        api.close()
    other = SecretsApi()
    try:
        assert run_secrets_hook(objects, other, tmp_path / "other").returncode == 0
        theirs = other.data()
    finally:
        other.close()
    assert theirs["bukva-platform-postgres"] != installed["bukva-platform-postgres"]
    # no value is in what the chart ships or renders
    shipped = "\n".join(p.read_text() for p in (CHARTS / "bukva-platform").rglob("*.yaml"))
    shipped += json.dumps(objects)
    for keys in installed.values():
        for value in keys.values():
            assert value not in shipped


def test_a_secret_brought_by_hand_is_kept(tmp_path: Path) -> None:
    api = SecretsApi()
    mine = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bukva-platform-postgres"}}
    mine["data"] = {"password": "bWluZQ=="}  # "mine"
    api.secrets[("bukva", "bukva-platform-postgres")] = mine
    try:
        done = run_secrets_hook(render("bukva-platform"), api, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Secret bukva-platform-postgres: exists, kept as it is" in done.stdout
        assert api.data()["bukva-platform-postgres"] == {"password": "mine"}
        assert "bukva-platform-s3" in api.data()
    finally:
        api.close()


def test_a_refused_create_fails_the_job_naming_the_secret(tmp_path: Path) -> None:
    api = SecretsApi(refuse={"bukva-platform-s3": 403})
    try:
        done = run_secrets_hook(render("bukva-platform"), api, tmp_path / "refused")
        assert done.returncode == 1
        assert "Secret bukva-platform-s3: HTTP 403: " in done.stderr
        assert "forbidden: refused by the test" in done.stderr
        assert "Traceback" not in done.stderr
        assert "bukva-platform-postgres" in api.data()  # the others are still made
        done = run_secrets_hook(render("bukva-platform"), api, tmp_path / "token", token="x")
        assert done.returncode == 1
        assert "HTTP 401: Unauthorized" in done.stderr
    finally:
        api.close()


def test_existing_secrets_leave_the_hook_only_the_missing_ones() -> None:
    objects = render("bukva-platform", sets=("postgres.existingSecret=my-pg",))
    names = {s["name"] for s in _spec(objects)["secrets"]}
    assert "bukva-platform-postgres" not in names and "my-pg" not in names
    assert names == {"bukva-platform-s3", *(f"bukva-platform-s3-{c}" for c in CLIENTS)}
    every = (
        "s3.existingSecret=my-s3",
        "postgres.existingSecret=my-pg",
        *(f"s3.users.{c}.existingSecret=my-{c}" for c in CLIENTS),
    )
    assert not _hook_objects(render("bukva-platform", sets=every))
