"""Execution of a training Job: seed the DVC remote as scripts/cluster-train.sh does, then run
the rendered `bukva-data` Job's own command line, environment and ConfigMap in a fresh copy
of the trainer image's /app, against the S3 stand-in (moto, for MinIO)."""

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


def test_training_job_runs_its_dvc_stages_against_the_s3_remote(
    cluster: Cluster, buckets: list[str], tmp_path: Path
) -> None:
    """Seed the remote as scripts/cluster-train.sh does, then run the bukva-data Job's container
    (its script, env and ConfigMap) in a fresh copy of the image's /app."""
    objects = kustomize("kind")
    job = find(objects, "Job", "bukva-data")
    container = job["spec"]["template"]["spec"]["containers"][0]
    cm = find(objects, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    env = {k: cluster.localize(v) for k, v in cm["data"].items()} | cluster.env(container)
    tools = str(Path(sys.executable).parent)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    run_env |= {"PATH": f"{tools}:{os.environ['PATH']}", "HOME": str(tmp_path)}

    # The laptop side: ingest from the data mirror (../shared/data next to the checkout).
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    laptop = image_workspace(tmp_path / "laptop")
    dvc = [str(Path(tools) / "dvc")]
    seed = [
        [*dvc, "repro", "ingest"],
        [*dvc, "remote", "add", "--local", "--force", "bukva-cluster", env["DVC_REMOTE_URL"]],
        [
            *dvc,
            "remote",
            "modify",
            "--local",
            "bukva-cluster",
            "endpointurl",
            env["AWS_ENDPOINT_URL"],
        ],
        [*dvc, "push", "-r", "bukva-cluster", "ingest"],
    ]
    creds = {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for cmd in seed:
        out = subprocess.run(cmd, cwd=laptop, env=run_env | creds, capture_output=True, text=True)
        assert out.returncode == 0, f"{cmd}: {out.stdout}{out.stderr}"

    # The pod: a fresh /app with no data at all, the Job's own command line.
    pod = image_workspace(tmp_path / "pod" / "app")
    argv = container["command"] + container["args"]
    out = subprocess.run(
        argv, cwd=pod, env=run_env | env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (pod / "data" / "split").is_dir()

    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        **{
            "aws_access_key_id": creds["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": creds["AWS_SECRET_ACCESS_KEY"],
        },
    )
    bucket, _, prefix = env["DVC_REMOTE_URL"].removeprefix("s3://").partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    lock = yaml.safe_load((pod / "dvc.lock").read_text())["stages"]
    for stage in ("prepare", "split"):
        digest = lock[stage]["outs"][0]["md5"]
        assert any(k.endswith(digest[2:]) for k in keys), f"{stage} output not pushed"
