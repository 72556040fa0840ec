"""Shared fixtures of the Kubernetes checks: the loopback stand-in for the cluster, with an
S3 endpoint (moto, for MinIO) and the buckets the platform's bucket-init Job creates."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from k8s_support import kustomize, render
from local_cluster import KIND, Cluster, find, free_port
from secrets_hook import installed_secrets


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    platform, app = render("bukva-platform", KIND), render("bukva", KIND)
    c = Cluster(platform + app + kustomize("kind"))
    # The Secrets the platform's hook Job creates on install (run against a stand-in API).
    for name, keys in installed_secrets(platform, tmp_path_factory.mktemp("secrets")).items():
        for key, value in keys.items():
            c.secrets[(name, key)] = value
    ports = {
        "s3": free_port(),
        "mlflow": free_port(),
        "predictor": free_port(),
        "transformer": free_port(),
        "prometheus": free_port(),
    }
    c.addresses = {
        "bukva-platform-minio:9000": f"127.0.0.1:{ports['s3']}",
        "bukva-platform-mlflow:5000": f"127.0.0.1:{ports['mlflow']}",
        "bukva-platform-prometheus:9090": f"127.0.0.1:{ports['prometheus']}",
        "bukva-predictor:80": f"127.0.0.1:{ports['predictor']}",
        "bukva-transformer:80": f"127.0.0.1:{ports['transformer']}",
    }
    c.ports = ports
    from moto.server import ThreadedMotoServer

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=ports["s3"], verbose=False)
    s3.start()
    # moto keeps its state per process: forget buckets other tests in this session made.
    reset = f"http://127.0.0.1:{ports['s3']}/moto-api/reset"
    urllib.request.urlopen(urllib.request.Request(reset, method="POST"), timeout=10).close()
    try:
        yield c
    finally:
        c.stop()
        s3.stop()


@pytest.fixture(scope="session")
def buckets(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Run the bucket-init Job's container (twice: it must be idempotent)."""
    objects = cluster.objects
    job = find(objects, "Job", "bukva-platform-bucket-init")
    container = job["spec"]["template"]["spec"]["containers"][0]
    scripts = tmp_path_factory.mktemp("scripts")
    cm = find(objects, "ConfigMap", "bukva-platform-bucket-init")
    for name, text in cm["data"].items():
        (scripts / name).write_text(text)
    mount = container["volumeMounts"][0]["mountPath"]
    env = cluster.env(container)
    argv = [a.replace(mount, str(scripts)) for a in cluster.argv(container, env, {})]
    for _ in range(2):
        out = subprocess.run(
            argv, env=os.environ | env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stdout + out.stderr
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    return sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
