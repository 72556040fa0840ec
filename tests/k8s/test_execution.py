"""Execution: run what the rendered manifests describe, as local processes, against the code.

The charts are rendered with the kind values (what `make cluster-up` installs). From the
rendered objects we take the containers' command, arguments and environment (Secrets
resolved from what the chart's secrets hook Job creates), map each in-cluster `service:port`
to a loopback port and each container port to a free local port, and start:

    moto (S3, for MinIO) -> bucket-init Job -> MLflow server -> [a champion is registered]
    -> predictor -> transformer -> frontend

then send a v2 request through the transformer, run the chart's `helm test` pod script, and
fetch /metrics where the Prometheus annotations point. Only two things are substituted,
both named here: PostgreSQL becomes SQLite in MLflow's --backend-store-uri, and `python`
becomes this interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from k8s_support import pod_specs, render
from local_cluster import (
    KIND,
    Cluster,
    canvas_request,
    container_of,
    find,
    free_port,
    probe_url,
    register_champion,
)

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def serving(cluster: Cluster, buckets: list[str], tmp_path_factory: pytest.TempPathFactory):
    """MLflow, a registered champion, the predictor and the transformer, all from manifests."""
    logs = tmp_path_factory.mktemp("logs")
    objects, ports = cluster.objects, cluster.ports

    mlflow = dict(container_of(objects, "Deployment/bukva-platform-mlflow"))
    # The one substitution: PostgreSQL -> SQLite (the rest of the command runs as rendered).
    sqlite = f"--backend-store-uri=sqlite:///{logs / 'mlflow.db'}"
    mlflow["command"] = [
        sqlite if a.startswith("--backend-store-uri=postgresql://") else a
        for a in mlflow["command"]
    ]
    assert sqlite in mlflow["command"]
    env = cluster.env(mlflow)
    cluster.start("mlflow", cluster.argv(mlflow, env, {5000: ports["mlflow"]}), env, logs)
    # MLflow creates its schema and starts its job runner first: give it the startup probe's time.
    ready = probe_url(mlflow, "readinessProbe", {5000: ports["mlflow"]})
    cluster.wait_http("mlflow", ready, timeout=300)
    register_champion(f"http://127.0.0.1:{ports['mlflow']}", logs)

    started = {}
    for comp in ("predictor", "transformer"):
        container = container_of(objects, f"InferenceService/bukva/{comp}")
        mapping = {8080: ports[comp], 8081: free_port()}
        env = cluster.env(container)
        cluster.start(comp, cluster.argv(container, env, mapping), env, logs)
        cluster.wait_http(comp, probe_url(container, "readinessProbe", mapping), timeout=180)
        started[comp] = (container, mapping)
    return started


def test_bucket_init_job_creates_every_bucket(buckets: list[str]) -> None:
    assert buckets == ["dvc", "feedback", "mlflow"]


def test_v2_request_through_the_transformer(cluster: Cluster, serving: dict) -> None:
    port = cluster.ports["transformer"]
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/bukva/infer",
        canvas_request(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        out = {o["name"]: o for o in json.load(r)["outputs"]}
    assert set(out) >= {"label", "probability", "uppercase_probability", "case_known", "status"}
    assert out["status"]["data"] == ["ok"]
    assert out["label"]["shape"][0] == 1 and len(out["label"]["data"]) >= 1
    assert all(0.0 <= p <= 1.0 for p in out["probability"]["data"])


def test_helm_test_pod_passes_against_the_running_stack(cluster: Cluster, serving: dict) -> None:
    pod = find(render("bukva", KIND), "Pod", "bukva-test-inference")
    container = pod["spec"]["containers"][0]
    argv = cluster.argv(container, {}, {})
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_annotations_point_at_real_metrics(cluster: Cluster, serving: dict) -> None:
    for comp, (_container, mapping) in serving.items():
        spec = next(
            p for p in pod_specs(cluster.objects) if p.owner == f"InferenceService/bukva/{comp}"
        )
        port, path = (
            int(spec.annotations["prometheus.io/port"]),
            spec.annotations["prometheus.io/path"],
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{mapping[port]}{path}", timeout=10) as r:
            text = r.read().decode()
        assert "# TYPE" in text, comp
    assert "request_predict" in text or "bukva_" in text


def test_liveness_probes_answer(serving: dict) -> None:
    for _comp, (container, mapping) in serving.items():
        with urllib.request.urlopen(
            probe_url(container, "livenessProbe", mapping), timeout=10
        ) as r:
            assert r.status == 200


def test_frontend_starts_from_its_manifest(cluster: Cluster, serving: dict, tmp_path: Path) -> None:
    container = container_of(cluster.objects, "Deployment/bukva-frontend")
    mapping = {8501: free_port()}
    env = cluster.env(container)
    assert env["BUKVA_INFERENCE_URL"] == f"http://127.0.0.1:{cluster.ports['transformer']}"
    cluster.start("frontend", cluster.argv(container, env, mapping), env, tmp_path)
    cluster.wait_http("frontend", probe_url(container, "readinessProbe", mapping), timeout=120)
    with urllib.request.urlopen(probe_url(container, "livenessProbe", mapping), timeout=10) as r:
        assert r.status == 200


def test_unknown_in_cluster_host_is_refused() -> None:
    c = Cluster([], addresses={"bukva-a:80": "127.0.0.1:1"})
    assert c.localize("http://bukva-a:80/x") == "http://127.0.0.1:1/x"
    with pytest.raises(AssertionError, match="bukva-b:80"):
        c.localize("http://bukva-b:80")


def test_prometheus_relabelling_builds_the_annotated_address(tmp_path: Path) -> None:
    cm = find(render("bukva-platform", KIND), "ConfigMap", "bukva-platform-prometheus")
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    rule = next(
        r
        for r in config["scrape_configs"][0]["relabel_configs"]
        if r.get("target_label") == "__address__"
    )
    pattern = re.compile(rule["regex"])
    for address in ("10.42.0.7:8080", "10.42.0.7"):
        m = pattern.fullmatch(f"{address};8080")
        assert m, address
        assert m.expand(rule["replacement"].replace("$", "\\")) == "10.42.0.7:8080"
    promtool = Path(sys.executable).with_name("promtool")
    for candidate in (promtool, Path("/usr/bin/promtool")):
        if candidate.exists():
            folder = tmp_path
            for name, text in cm["data"].items():  # the config and the rule files it names
                (folder / name).write_text(text)
            config["rule_files"] = [str(folder / Path(f).name) for f in config["rule_files"]]
            cfg = folder / "prometheus.yml"
            cfg.write_text(yaml.safe_dump(config))
            out = subprocess.run(
                [str(candidate), "check", "config", str(cfg)], capture_output=True, text=True
            )
            if "kubernetes_sd_configs not found" in out.stdout + out.stderr:
                continue  # Debian's promtool is built without Kubernetes service discovery
            assert out.returncode == 0, out.stdout + out.stderr
            break
