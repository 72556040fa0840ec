"""Execution of the training Jobs' script: the rendered `bukva-data` Job (its command, its
script and helper from the ConfigMap it mounts, its environment resolved from the platform's
endpoints ConfigMap, S3 Secret and the Job's parameters) in a fresh copy of the trainer image's
/app, against the S3 stand-in (moto, for MinIO); then a second pod of the same template that
must find the first one's dvc.lock and outputs in the remote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from k8s_support import kustomize
from local_cluster import Cluster, find, image_workspace

pytestmark = pytest.mark.k8s


def _pod(cluster: Cluster, tmp: Path, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The bukva-data container as a local command line: its script files written out of the
    ConfigMap it mounts, and its environment (overridden by `env`, as an overlay would)."""
    objects = kustomize("kind")
    job = find(objects, "Job", "bukva-data")
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
    # It must take pod 1's lock from the remote, see split unchanged and pull its outputs; and,
    # as the train Job does after `register`, report the registration as its termination message.
    second = image_workspace(tmp_path / "pod2" / "app")
    (second / "reports").mkdir(exist_ok=True)
    (second / "reports" / "registration.json").write_text(
        '{"version": 4, "promoted": true, "champion": 4, "reason": "better"}'
    )
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
    assert termination.read_text().strip() == "version=4 promoted=true champion=4"
