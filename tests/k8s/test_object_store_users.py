"""Each client of the object store as its own MinIO user (charts/bukva-platform, s3.users).

No MinIO runs here (moto has no MinIO admin API), so the proof is offline:
- each policy document the hook Job loads, evaluated by a small IAM evaluator (Allow
  statements, `*` wildcards in resources, StringLike on `s3:prefix`: the only forms the chart
  writes, and the evaluator refuses any other) against what each client does and must not do;
- the hook Job's script, run by the real `sh` with the rendered ConfigMap, the Secrets one
  install holds (the secrets hook Job, run: secrets_hook.py) mounted as files the way the Job
  mounts them, and a recording stand-in for `mc` (MinIO's client: the one part that is not
  real), creates exactly the users the Secrets name and attaches exactly the policies the
  ConfigMap holds, and survives a re-run.
What only a real MinIO proves (that MinIO enforces these documents so) is `helm test`'s job:
its pod lists with each client's key, allowed and refused (docs/kubernetes.md).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from k8s_support import containers, kustomize, pod_specs, render
from secrets_hook import installed_secrets

pytestmark = pytest.mark.k8s

CLIENTS = {"frontend", "training", "mlflow", "predictor"}
HOOK = "bukva-platform-s3-users"


def _one(objects: list[dict], kind: str, name: str) -> dict:
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def policies(sets: tuple[str, ...] = ()) -> dict[str, dict]:
    data = _one(render("bukva-platform", sets=sets), "ConfigMap", HOOK)["data"]
    return {k.removesuffix(".json"): json.loads(v) for k, v in data.items() if k.endswith(".json")}


def allowed(policy: dict, action: str, resource: str, prefix: str | None = None) -> bool:
    """Whether `policy` allows `action` on `resource` (an ARN); `prefix`: a ListBucket's."""
    assert policy["Version"] == "2012-10-17"
    verdict = False
    for st in policy["Statement"]:
        assert set(st) <= {"Effect", "Action", "Resource", "Condition"}, st
        assert st["Effect"] == "Allow"  # nothing relies on a Deny
        if action not in st["Action"]:
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in st["Resource"]):
            continue
        condition = st.get("Condition")
        if condition is not None:
            assert list(condition) == ["StringLike"] and list(condition["StringLike"]) == [
                "s3:prefix"
            ], condition
            patterns = condition["StringLike"]["s3:prefix"]
            if prefix is None or not any(fnmatch.fnmatchcase(prefix, p) for p in patterns):
                continue
        verdict = True
    return verdict


def obj(bucket_key: str) -> str:
    return f"arn:aws:s3:::{bucket_key}"


def test_every_client_has_one_valid_policy_of_named_actions() -> None:
    docs = policies()
    assert set(docs) == CLIENTS
    buckets = {"mlflow", "dvc", "feedback"}
    for client, doc in docs.items():
        for st in doc["Statement"]:
            for action in st["Action"]:
                assert action.startswith("s3:") and "*" not in action, (client, action)
                assert not action.startswith(("s3:Create", "s3:DeleteBucket", "s3:PutBucket"))
                assert "Policy" not in action and action != "s3:ListAllMyBuckets"
            for resource in st["Resource"]:
                bucket = resource.removeprefix("arn:aws:s3:::").split("/")[0]
                assert bucket in buckets, (client, resource)


# (client, action, resource, ListBucket prefix, allowed): what each client does (from
# src/bukva/storage.py, pipelines/, kustomize/base/job/, MLflow's proxy) and what it must not.
CASES = [
    # the app: the outbox delivers records, the Review page writes decisions and reads records
    ("frontend", "s3:PutObject", "feedback/drawings/а/0f3c.png", None, True),
    ("frontend", "s3:PutObject", "feedback/drawings/reviews/0f3c.json", None, True),
    ("frontend", "s3:GetObject", "feedback/drawings/а/0f3c.json", None, True),
    ("frontend", "s3:ListBucket", "feedback", "drawings/", True),
    ("frontend", "s3:ListBucket", "feedback", "", False),
    ("frontend", "s3:PutObject", "feedback/elsewhere.png", None, False),
    ("frontend", "s3:DeleteObject", "feedback/drawings/а/0f3c.png", None, False),
    ("frontend", "s3:GetObject", "dvc/bukva/files/md5/ab/cdef", None, False),
    ("frontend", "s3:GetObject", "mlflow/1/run/artifacts/model/model.onnx", None, False),
    ("frontend", "s3:ListBucket", "mlflow", "", False),
    ("frontend", "s3:ListAllMyBuckets", "*", None, False),
    # the training Jobs: DVC pull/push and the Jobs' state, ingest reads feedback
    ("training", "s3:GetObject", "dvc/bukva/files/md5/ab/cdef", None, True),
    ("training", "s3:PutObject", "dvc/bukva/files/md5/ab/cdef", None, True),
    ("training", "s3:PutObject", "dvc/bukva/state/dvc.lock", None, True),
    ("training", "s3:AbortMultipartUpload", "dvc/bukva/files/md5/ab/cdef", None, True),
    ("training", "s3:ListBucket", "dvc", "bukva/files/md5/ab/", True),
    ("training", "s3:GetObject", "feedback/drawings/а/0f3c.json", None, True),
    ("training", "s3:ListBucket", "feedback", "drawings/", True),
    ("training", "s3:PutObject", "feedback/drawings/а/0f3c.json", None, False),
    ("training", "s3:DeleteObject", "dvc/bukva/files/md5/ab/cdef", None, False),
    ("training", "s3:PutObject", "dvc/other/x", None, False),
    ("training", "s3:GetObject", "mlflow/1/run/artifacts/model/model.onnx", None, False),
    # MLflow's artifact proxy: its bucket, all object operations
    ("mlflow", "s3:PutObject", "mlflow/1/run/artifacts/model/model.onnx", None, True),
    ("mlflow", "s3:DeleteObject", "mlflow/1/run/artifacts/model/model.onnx", None, True),
    ("mlflow", "s3:ListBucket", "mlflow", "1/", True),
    ("mlflow", "s3:GetObject", "feedback/drawings/а/0f3c.json", None, False),
    ("mlflow", "s3:GetObject", "dvc/bukva/files/md5/ab/cdef", None, False),
    # the predictor (an s3:// modelUri): reads the artifact bucket, nothing else
    ("predictor", "s3:GetObject", "mlflow/1/run/artifacts/model/model.onnx", None, True),
    ("predictor", "s3:ListBucket", "mlflow", "1/run/", True),
    ("predictor", "s3:PutObject", "mlflow/1/run/artifacts/model/model.onnx", None, False),
    ("predictor", "s3:DeleteObject", "mlflow/1/run/artifacts/model/model.onnx", None, False),
    ("predictor", "s3:GetObject", "feedback/drawings/а/0f3c.json", None, False),
]


@pytest.mark.parametrize(("client", "action", "resource", "prefix", "expected"), CASES)
def test_each_policy_allows_what_its_client_does_and_nothing_else(
    client: str, action: str, resource: str, prefix: str | None, expected: bool
) -> None:
    assert allowed(policies()[client], action, obj(resource), prefix) is expected


def test_policies_follow_the_bucket_and_prefix_values() -> None:
    docs = policies(("s3.buckets.feedback=fb", "s3.feedbackPrefix=canvas", "s3.dvcPrefix=r"))
    assert allowed(docs["frontend"], "s3:PutObject", obj("fb/canvas/а/1.png"))
    assert not allowed(docs["frontend"], "s3:PutObject", obj("fb/drawings/а/1.png"))
    assert allowed(docs["frontend"], "s3:ListBucket", obj("fb"), "canvas/")
    assert allowed(docs["training"], "s3:PutObject", obj("dvc/r/files/md5/ab/c"))
    assert not allowed(docs["training"], "s3:PutObject", obj("dvc/bukva/files/md5/ab/c"))


def test_the_training_jobs_and_the_app_read_the_users_the_platform_makes() -> None:
    """The Secret names the Jobs (kustomize) and the app chart use by default are the ones
    the platform renders and the hook Job turns into users."""
    platform = render("bukva-platform")
    job = _one(platform, "Job", HOOK)
    mounted = {
        v["secret"]["secretName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    used = set()
    for pod in pod_specs(
        render("bukva", sets=("predictor.modelUri=s3://mlflow/1/m",))
        + kustomize("kind")
        + kustomize("cluster")
    ):
        for c in containers(pod.spec):
            used |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
            used |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
    assert used == {
        "bukva-platform-s3-frontend",
        "bukva-platform-s3-predictor",
        "bukva-platform-s3-training",
    }
    assert used <= mounted


# --- the hook Job's script, against a recording stand-in mc --------------------------------

STANDIN_MC = r"""
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
entry = {"args": args}
if args[:3] == ["admin", "policy", "create"]:
    entry["document"] = json.loads(Path(args[5]).read_text())
with open(os.environ["MC_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
state = Path(os.environ["MC_LOG"] + ".state")
seen = json.loads(state.read_text()) if state.exists() else {}
for rule in json.loads(os.environ["MC_RULES"]):
    if " ".join(args).startswith(rule["prefix"]) and seen.get(rule["prefix"], 0) < rule["times"]:
        seen[rule["prefix"]] = seen.get(rule["prefix"], 0) + 1
        state.write_text(json.dumps(seen))
        sys.stderr.write(rule["stderr"])
        sys.exit(1)
"""


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The Secrets one install holds (the platform's secrets hook Job, run: secrets_hook.py)."""
    return installed_secrets(render("bukva-platform"), tmp_path_factory.mktemp("install"))


def run_hook(
    tmp_path: Path, rules: list[dict], secrets: dict[str, dict[str, str]]
) -> tuple[subprocess.CompletedProcess, list]:
    """The hook Job's container command, run by sh with its ConfigMap and Secrets as files."""
    objects = render("bukva-platform")
    config = _one(objects, "ConfigMap", HOOK)["data"]
    pod = _one(objects, "Job", HOOK)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "MC_LOG": str(tmp_path / "mc.log"),
        "MC_RULES": json.dumps(rules),
    }
    where: dict[str, Path] = {}
    for mount in container["volumeMounts"]:  # the Job's mounts, moved under tmp_path
        target = tmp_path / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        where[mount["mountPath"]] = target
        volume = volumes[mount["name"]]
        files = (
            config
            if "configMap" in volume
            else secrets[volume["secret"]["secretName"]]
            if "secret" in volume
            else {}
        )
        for name, text in files.items():
            (target / name).write_text(text)
    for e in container["env"]:
        if "value" in e:
            value = e["value"]  # a folder above the Job's mounts: the same folder here
            moved = value.startswith("/") and any(m.startswith(value) for m in where)
            env[e["name"]] = str(tmp_path / value.lstrip("/")) if moved else value
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
    (tmp_path / "bin").mkdir()
    mc = tmp_path / "bin" / "mc"
    mc.write_text(f"#!{sys.executable}\n{STANDIN_MC}")
    mc.chmod(0o755)
    command = [
        str(where.get(str(Path(a).parent), Path(a).parent) / Path(a).name)
        if a.startswith("/scripts/")
        else a
        for a in container["command"]
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    log = tmp_path / "mc.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def test_the_hook_creates_exactly_the_users_and_policies_the_chart_names(
    tmp_path: Path, secrets: dict[str, dict[str, str]]
) -> None:
    # the first attach meets a policy already attached (a re-run): not an error
    rules = [
        {
            "prefix": "admin policy attach bukva bukva-frontend",
            "times": 1,
            "stderr": "mc: <ERROR> The specified policy change is already in effect.\n",
        }
    ]
    done, calls = run_hook(tmp_path, rules, secrets)
    assert done.returncode == 0, done.stderr
    root = secrets["bukva-platform-s3"]
    users = {c: secrets[f"bukva-platform-s3-{c}"] for c in CLIENTS}
    docs = policies()
    assert calls[0]["args"] == [
        "alias",
        "set",
        "bukva",
        "http://bukva-platform-minio:9000",
        root["AWS_ACCESS_KEY_ID"],
        root["AWS_SECRET_ACCESS_KEY"],
    ]
    created = {
        c["args"][4]: c["document"] for c in calls if c["args"][:3] == ["admin", "policy", "create"]
    }
    added = {c["args"][4]: c["args"][5] for c in calls if c["args"][:3] == ["admin", "user", "add"]}
    attached = {
        (c["args"][4], c["args"][6])
        for c in calls
        if c["args"][:3] == ["admin", "policy", "attach"]
    }
    assert created == {f"bukva-{c}": docs[c] for c in CLIENTS}
    assert added == {u["AWS_ACCESS_KEY_ID"]: u["AWS_SECRET_ACCESS_KEY"] for u in users.values()}
    assert attached == {(f"bukva-{c}", users[c]["AWS_ACCESS_KEY_ID"]) for c in CLIENTS}
    assert root["AWS_ACCESS_KEY_ID"] not in added  # the root key is never a client's


def test_the_hook_fails_on_a_refused_attach(
    tmp_path: Path, secrets: dict[str, dict[str, str]]
) -> None:
    rules = [
        {
            "prefix": "admin policy attach bukva bukva-training",
            "times": 1,
            "stderr": "mc: <ERROR> Access Denied.\n",
        }
    ]
    done, _ = run_hook(tmp_path, rules, secrets)
    assert done.returncode != 0
    assert "Access Denied" in done.stderr


def test_the_hook_waits_for_minio(tmp_path: Path, secrets: dict[str, dict[str, str]]) -> None:
    rules = [{"prefix": "admin info", "times": 1, "stderr": "mc: <ERROR> connection refused\n"}]
    done, calls = run_hook(tmp_path, rules, secrets)
    assert done.returncode == 0, done.stderr
    assert [c["args"][:2] for c in calls].count(["admin", "info"]) == 2
