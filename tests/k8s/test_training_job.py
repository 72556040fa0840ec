"""Execution of the training Jobs' script: the rendered `bukva-data` Job (its command, its
script and helper from the ConfigMap it mounts, its environment resolved from the platform's
endpoints ConfigMap, S3 Secret and the Job's parameters) in a fresh copy of the trainer image's
/app, against the S3 stand-in (moto, for MinIO); then a second pod of the same template that
must find the first one's dvc.lock and outputs in the remote. And the `bukva-train` Job's
verdict over successive runs, with DVC's real skipping of unchanged stages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from k8s_support import ROOT, kustomize
from local_cluster import Cluster, find, image_workspace

pytestmark = pytest.mark.k8s


def _pod(
    cluster: Cluster, tmp: Path, env: dict[str, str], job_name: str = "bukva-data"
) -> tuple[list[str], dict[str, str]]:
    """A Job's container as a local command line: its script files written out of the
    ConfigMap it mounts, and its environment (overridden by `env`, as an overlay would)."""
    objects = kustomize("kind")
    job = find(objects, "Job", job_name)
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    [mount] = container["volumeMounts"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    scripts = tmp / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    for name, text in find(objects, "ConfigMap", volume["configMap"]["name"])["data"].items():
        (scripts / name).write_text(text)
    argv = [a.replace(mount["mountPath"], str(scripts)) for a in container["command"]]
    tools = str(Path(sys.executable).parent)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "BUKVA_"))}
    base |= {"PATH": f"{tools}:{os.environ['PATH']}", "HOME": str(tmp)}
    return argv, base | cluster.env(container) | env


def _s3(env: dict[str, str]):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def test_data_job_ingests_its_source_and_hands_its_lock_to_the_next_job(
    cluster: Cluster, buckets: list[str], tmp_path: Path, raw_data: Path
) -> None:
    # What a person with a mirror sets INGEST_SOURCE to: the tests' raw data, found or fetched.
    mirror = raw_data
    # Pod 1: the data Job, with no data at all in its /app; the source is its parameter.
    first = image_workspace(tmp_path / "pod1" / "app")
    argv, env = _pod(cluster, tmp_path / "pod1", {"INGEST_SOURCE": str(mirror)})
    assert env["DVC_STAGES"].startswith("ingest prepare split") and env["DVC_FORCE"] == "ingest"
    # The script, env and handoff are what is under test: the first three stages (the rest
    # of the data stages, `draw`, costs minutes of CPU and runs the same way).
    env["DVC_STAGES"] = "ingest prepare split"
    assert env["BUKVA_FEEDBACK_URI"].startswith("s3://feedback/")  # from the endpoints ConfigMap
    out = subprocess.run(argv, cwd=first, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (first / "data" / "split").is_dir()
    params = yaml.safe_load((first / "params.yaml").read_text())["ingest"]
    assert (params["source"], params["feedback"]) == (str(mirror), env["BUKVA_FEEDBACK_URI"])

    s3 = _s3(env)
    bucket, _, prefix = env["DVC_REMOTE_URL"].removeprefix("s3://").partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    lock_text = (first / "dvc.lock").read_text()
    lock = yaml.safe_load(lock_text)["stages"]
    for stage in ("ingest", "prepare", "split"):
        digest = lock[stage]["outs"][0]["md5"]
        assert any(k.endswith(digest[2:]) for k in keys), f"{stage} output not pushed"
    state = s3.get_object(Bucket=bucket, Key=f"{prefix}/state/dvc.lock")["Body"].read().decode()
    assert state == lock_text, "the Job leaves its dvc.lock next to the remote"

    # Pod 2: a fresh /app (the image's own dvc.lock), the same template running `split` only.
    # It must take pod 1's lock from the remote, see split unchanged and pull its outputs; a
    # Job without `register` reports no verdict.
    second = image_workspace(tmp_path / "pod2" / "app")
    termination = tmp_path / "termination-log"
    argv, env = _pod(
        cluster,
        tmp_path / "pod2",
        {
            "INGEST_SOURCE": str(mirror),
            "DVC_STAGES": "split",
            "DVC_FORCE": "",
            "TERMINATION_LOG": str(termination),
        },
    )
    out = subprocess.run(argv, cwd=second, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "dvc.lock from s3://" in out.stdout
    assert "Running stage 'split'" not in out.stdout + out.stderr, "split re-ran: no handoff"
    assert (second / "data" / "split").is_dir()
    # The image's dvc.lock records the mirror it was built from; pod 1's records this run's.
    assert yaml.safe_load((second / "dvc.lock").read_text())["stages"]["ingest"] == lock["ingest"]
    assert not termination.exists(), "a Job without register has no verdict"


# The train Job's last three stages, each as cheap as can be, with the real dvc.yaml's outputs
# of `evaluate` (reports/metrics.json) and `register` (reports/registration.json), both
# `cache: false`: what makes a fresh pod lack them when DVC skips the stages.
TOY = """import json, os, sys
from pathlib import Path
step, log = sys.argv[1], Path(os.environ["TOY_LOG"])
with log.open("a") as f:
    f.write(step + "\\n")
if step == "train":
    Path("models/model").mkdir(parents=True, exist_ok=True)
    Path("models/model/weights").write_text(Path("weights.txt").read_text())
elif step == "evaluate":
    Path("reports").mkdir(exist_ok=True)
    Path("reports/predictions.csv").write_text("a,a\\n")
    Path("reports/metrics.json").write_text('{"label_accuracy": 0.9}')
else:  # register: a new version each run, promoted unless TOY_VERDICT says otherwise
    n = log.read_text().split().count("register")
    verdict = os.environ.get("TOY_VERDICT") or json.dumps({"version": n, "promoted": True})
    Path("reports/registration.json").write_text(
        json.dumps({"champion": n, **json.loads(verdict)})
    )
"""


def _toy_project(app: Path, weights: str) -> Path:
    real = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    metrics = [
        o for o in real["evaluate"]["outs"] if isinstance(o, dict) and "reports/metrics.json" in o
    ]
    assert metrics == [{"reports/metrics.json": {"cache": False}}]
    assert {"models/model", "reports/metrics.json"} <= set(real["register"]["deps"])
    assert real["register"]["outs"] == [{"reports/registration.json": {"cache": False}}]
    stages = {
        "train": {
            "cmd": "python toy.py train",
            "deps": ["toy.py", "weights.txt"],
            "outs": ["models/model"],
        },
        "evaluate": {
            "cmd": "python toy.py evaluate",
            "deps": ["models/model"],
            "outs": ["reports/predictions.csv", *metrics],
        },
        "register": {
            "cmd": "python toy.py register",
            "deps": ["models/model", "reports/metrics.json"],
            "outs": real["register"]["outs"],
        },
    }
    app.mkdir(parents=True)
    (app / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (app / "params.yaml").write_text("ingest: {source: '', feedback: ''}\n")
    (app / "toy.py").write_text(TOY)
    (app / "weights.txt").write_text(weights)
    dvc = str(Path(sys.executable).parent / "dvc")
    git = ["git", "-c", "user.name=bukva", "-c", "user.email=bukva@localhost"]
    for cmd in (
        ["git", "init", "-q"],
        [dvc, "init", "-q"],
        ["git", "add", "-A"],
        [*git, "commit", "-qm", "image"],
    ):
        subprocess.run(cmd, cwd=app, check=True, capture_output=True)
    return app


def test_train_job_reports_a_verdict_on_every_run(
    cluster: Cluster, buckets: list[str], tmp_path: Path
) -> None:
    """Each run is a fresh pod of the rendered bukva-train Job (its script, helper and
    environment) over a toy pipeline of the same shape; DVC decides what runs."""
    log = tmp_path / "stages.log"
    log.touch()
    remote = None

    def pod(name: str, weights: str = "w1", **extra: str) -> tuple[str, str]:
        nonlocal remote
        app = _toy_project(tmp_path / name / "app", weights)
        termination = tmp_path / name / "termination-log"
        env = {"DVC_STAGES": "train evaluate register", "TERMINATION_LOG": str(termination)}
        argv, env = _pod(
            cluster, tmp_path / name, env | {"TOY_LOG": str(log)} | extra, "bukva-train"
        )
        # Its own prefix of the DVC bucket: the data Job's test keeps its state in the same one.
        remote = remote or env["DVC_REMOTE_URL"].rstrip("/") + "/verdict-test"
        env["DVC_REMOTE_URL"] = remote
        out = subprocess.run(argv, cwd=app, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return termination.read_text().strip(), out.stdout + out.stderr

    def ran() -> list[str]:
        return log.read_text().split()

    # 1. The first run: everything runs; register promotes version 1.
    message, _ = pod("run1")
    assert ran() == ["train", "evaluate", "register"]
    assert message == "version=1 promoted=true champion=1"

    # 2. Nothing changed (a second `make cluster up`): DVC pulls train's and evaluate's outputs
    # and skips register, whose registration is not in the remote. The Job still reports, and
    # reports what happened: nothing was promoted, the champion is still 1.
    message, output = pod("run2")
    assert ran() == ["train", "evaluate", "register"], "DVC skipped every stage"
    assert "Running stage 'register'" not in output
    assert message == "version=1 promoted=false champion=1 register=skipped"

    # 3. No verdict kept (a remote from before this change, or a lock that came with the
    # image): register runs again, with evaluate for its uncached metrics; train does not.
    env = _pod(cluster, tmp_path / "s3", {})[1]
    bucket, _, prefix = remote.removeprefix("s3://").partition("/")
    _s3(env).delete_object(Bucket=bucket, Key=f"{prefix}/state/registration.json")
    message, _ = pod("run3")
    assert ran()[3:] == ["evaluate", "register"]
    assert message == "version=2 promoted=true champion=2"

    # 4. A new model the gate rejects while the registry's alias was moved to 99 by hand:
    # the Job reports the champion of its own last verdict, not the alias.
    rejected = '{"version": 3, "promoted": false, "champion": 99}'
    message, output = pod("run4", weights="w2", TOY_VERDICT=rejected)
    assert ran()[5:] == ["train", "evaluate", "register"]
    assert message == "version=3 promoted=false champion=2"
    assert "alias names version 99" in output
