"""Wiring: what one container names, another object really provides.

For one install (platform + app + training overlay, default and kind values):
- every environment variable a bukva container sets is one the code reads;
- every Service host:port referenced (env, args, Ingress) exists, with a pod behind it;
- every Secret key / ConfigMap referenced exists in the rendered set;
- every bukva image is one `make images` builds, every other image is pinned;
- Prometheus is pointed at a port the pod really listens on, and its relabelling gives the
  pods the `job` labels the monitoring page and the rules select.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockerfiles import image as dockerfile_image
from k8s_support import (
    ROOT,
    containers,
    environments,
    kserve_services,
    make_images,
    pod_specs,
    split_image,
)

from bukva.settings import ENV_VARS

pytestmark = pytest.mark.k8s

ENVS = ["default", "kind"]  # keys of k8s_support.environments()

# Variables a library in the image reads (verified below by finding the name in its source).
LIBRARY_VARS = {
    "AWS_ACCESS_KEY_ID": "botocore",
    "AWS_SECRET_ACCESS_KEY": "botocore",
    "MLFLOW_S3_ENDPOINT_URL": "mlflow",
    "MLFLOW_TRACKING_URI": "mlflow",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "mlflow",
}
# Variables a native library in the image reads (verified by finding the name in its binary):
# libpq, under psycopg (MLflow's PostgreSQL driver), takes PGPASSWORD from the environment.
NATIVE_VARS = {"PGPASSWORD": "libpq"}
# Third-party images: the variables their documentation defines.
THIRD_PARTY_VARS = {
    "quay.io/minio/minio": {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MINIO_PROMETHEUS_AUTH_TYPE"},
    "docker.io/library/postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PGDATA"},
    "quay.io/prometheus/prometheus": set(),
    "quay.io/minio/mc": {"MC_CONFIG_DIR"},
}
URL_RE = re.compile(r"\bhttps?://([a-z0-9][a-z0-9.-]*)(?::(\d+))?")
DSN_RE = re.compile(r"\bpostgresql://[^@\s]*@([a-z0-9][a-z0-9.-]*):(\d+)")
HOSTPORT_ARG_RE = re.compile(r"^--\w*host=([a-z0-9][a-z0-9.-]*):(\d+)$")


def _is_bukva(image: str) -> bool:
    return split_image(image)[0].split("/")[-2:-1] == ["bukva"]


def _env_names(container: dict, objects: list[dict]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for src in container.get("envFrom", []):
        ref = src.get("configMapRef") or src.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in src else "Secret"
        obj = _object(objects, kind, ref["name"])
        names |= set((obj or {}).get("data", {}))
    return names


def _object(objects: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


@functools.cache
def _library_reads(var: str, package: str) -> bool:
    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations, f"{package} is not installed"
    folder = next(iter(spec.submodule_search_locations))
    out = subprocess.run(
        ["grep", "-rlqF", "--include=*.py", var, folder], capture_output=True, check=False
    )
    return out.returncode == 0


def _native_reads(var: str, library: str) -> bool:
    """The native library psycopg loads (the system's libpq, as the trainer image installs it;
    or a copy bundled beside a site-packages wheel) names `var` in its binary."""
    import ctypes.util
    import site

    candidates = [p for f in site.getsitepackages() for p in Path(f).glob(f"*.libs/{library}*.so*")]
    found = ctypes.util.find_library(library.removeprefix("lib"))
    if found:
        lib = ctypes.CDLL(found)
        maps = Path("/proc/self/maps").read_text().splitlines()
        candidates += [Path(line.split()[-1]) for line in maps if f"/{found}" in line]
        del lib
    assert candidates, f"no {library} found (the system's, as the images install it)"
    return any(var.encode() in path.read_bytes() for path in candidates)


def _script_text(container: dict, spec: dict, objects: list[dict]) -> str:
    """The container's command line and the ConfigMap files mounted into it (its scripts)."""
    texts = container.get("command", []) + container.get("args", [])
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        ref = volumes.get(mount["name"], {}).get("configMap")
        if ref:
            texts += list(
                (_object(objects, "ConfigMap", ref["name"]) or {}).get("data", {}).values()
            )
    return " ".join(texts)


def _reads(script: str, name: str) -> bool:
    """A shell $NAME / ${NAME} / $(NAME), or a Python script that reads os.environ and names
    "NAME" as a string."""
    if re.search(rf"\$\(?{{?{name}\b", script):
        return True
    return "os.environ" in script and bool(re.search(rf"[\"']{name}[\"']", script))


@pytest.mark.parametrize("env", ENVS)
def test_every_env_var_is_read_by_the_code(env: str) -> None:
    objects = environments()[env]
    bad = []
    for pod in pod_specs(objects):
        for c in containers(pod.spec):
            script = _script_text(c, pod.spec, objects)
            for name in sorted(_env_names(c, objects)):
                if _reads(script, name):
                    continue  # the container's own command line or script reads it
                if _is_bukva(c["image"]):
                    if name in ENV_VARS:
                        continue
                    if name in LIBRARY_VARS and _library_reads(name, LIBRARY_VARS[name]):
                        continue
                    if name in NATIVE_VARS and _native_reads(name, NATIVE_VARS[name]):
                        continue
                else:
                    repo = split_image(c["image"])[0]
                    if name in THIRD_PARTY_VARS.get(repo, set()):
                        continue
                bad.append(f"{pod.owner}/{c['name']}: {name}")
    assert not bad, "variables nothing reads:\n" + "\n".join(bad)


def test_library_var_check_can_fail() -> None:
    assert _library_reads("AWS_SECRET_ACCESS_KEY", "botocore")
    assert not _library_reads("AWS_SECRET_ACCES_KEY_TYPO", "botocore")
    assert _native_reads("PGPASSWORD", "libpq")
    assert not _native_reads("PGPASSWORD_TYPO", "libpq")


def _references(objects: list[dict]) -> Iterator[tuple[str, str, int]]:
    """(who, service host, port) for every in-cluster address a container or Ingress names."""
    for pod in pod_specs(objects):
        for c in containers(pod.spec):
            texts = [e.get("value", "") for e in c.get("env", [])]
            for e in c.get("env", []):
                key = e.get("valueFrom", {}).get("configMapKeyRef")
                if key:
                    cm = _object(objects, "ConfigMap", key["name"]) or {}
                    texts.append(cm.get("data", {}).get(key["key"], ""))
            texts += c.get("command", []) + c.get("args", [])
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    cm = _object(objects, "ConfigMap", src["configMapRef"]["name"]) or {}
                    texts += list(cm.get("data", {}).values())
            for text in texts:
                for m in URL_RE.finditer(text):
                    yield f"{pod.owner}/{c['name']}", m[1], int(m[2] or 80)
                for m in DSN_RE.finditer(text):
                    yield f"{pod.owner}/{c['name']}", m[1], int(m[2])
                if m := HOSTPORT_ARG_RE.match(text):
                    yield f"{pod.owner}/{c['name']}", m[1], int(m[2])


def _service_ports(objects: list[dict]) -> dict[str, dict]:
    services = [o for o in objects if o["kind"] == "Service"] + kserve_services(objects)
    return {s["metadata"]["name"]: s for s in services}


LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0"}


@pytest.mark.parametrize("env", ENVS)
def test_every_referenced_service_and_port_exists(env: str) -> None:
    objects = environments()[env]
    services = _service_ports(objects)
    refs = list(_references(objects))
    assert any(h == "bukva-platform-mlflow" for _, h, _ in refs)
    assert any(h == "bukva-predictor" for _, h, _ in refs), "transformer -> predictor"
    bad = []
    for who, host, port in refs:
        if host in LOCAL_HOSTS:
            continue
        name = host.removesuffix(".svc.cluster.local").removesuffix(".bukva").removesuffix(".svc")
        svc = services.get(name)
        if svc is None:
            bad.append(f"{who}: no Service {host}")
        elif port not in {p["port"] for p in svc["spec"]["ports"]}:
            bad.append(f"{who}: Service {name} has no port {port}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("env", ENVS)
def test_ingress_backends_exist(env: str) -> None:
    objects = environments()[env]
    services = _service_ports(objects)
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    if env == "kind":
        assert len(ingresses) == 3  # the platform's UIs, the app, the v2 API
    for ing in ingresses:
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = services.get(backend["name"])
                assert svc, f"{rule['host']}: no Service {backend['name']}"
                port = backend["port"]
                key = "name" if "name" in port else "port"
                want = port.get("name", port.get("number"))
                assert want in {p.get(key) for p in svc["spec"]["ports"]}, (rule["host"], port)


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("env", ENVS)
def test_services_select_pods_that_listen_on_their_target_ports(env: str) -> None:
    objects = environments()[env]
    pods = [p for p in pod_specs(objects) if p.kind in {"Deployment", "StatefulSet"}]
    for svc in (o for o in objects if o["kind"] == "Service"):
        selected = [p for p in pods if _labels_match(svc["spec"]["selector"], p.labels)]
        assert len(selected) == 1, f"Service {svc['metadata']['name']} selects {len(selected)}"
        ports = [p for c in containers(selected[0].spec) for p in c.get("ports", [])]
        for sp in svc["spec"]["ports"]:
            target = sp.get("targetPort", sp["port"])
            assert any(target in (p.get("name"), p["containerPort"]) for p in ports), (
                svc["metadata"]["name"],
                target,
            )


@pytest.mark.parametrize("env", ENVS)
def test_every_secret_key_and_config_map_exists(env: str) -> None:
    objects = environments()[env]
    bad = []
    for pod in pod_specs(objects):
        for c in containers(pod.spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = _object(objects, "Secret", ref["name"])
                    if not secret or ref["key"] not in secret.get("data", {}):
                        bad.append(f"{pod.owner}: Secret {ref['name']} key {ref['key']}")
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref and not ref.get("optional"):
                    cm = _object(objects, "ConfigMap", ref["name"])
                    if not cm or ref["key"] not in cm.get("data", {}):
                        bad.append(f"{pod.owner}: ConfigMap {ref['name']} key {ref['key']}")
            for src in c.get("envFrom", []):
                kind = "ConfigMap" if "configMapRef" in src else "Secret"
                ref = src.get("configMapRef") or src["secretRef"]
                if not _object(objects, kind, ref["name"]):
                    bad.append(f"{pod.owner}: {kind} {ref['name']}")
        for vol in pod.spec.get("volumes", []):
            if "configMap" in vol and not _object(objects, "ConfigMap", vol["configMap"]["name"]):
                bad.append(f"{pod.owner}: volume ConfigMap {vol['configMap']['name']}")
            if "persistentVolumeClaim" in vol and not _object(
                objects, "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]
            ):
                bad.append(f"{pod.owner}: PVC {vol['persistentVolumeClaim']['claimName']}")
        sa = pod.spec.get("serviceAccountName")
        if sa and not _object(objects, "ServiceAccount", sa):
            bad.append(f"{pod.owner}: ServiceAccount {sa}")
    assert not bad, "\n".join(bad)


@functools.cache
def built_images() -> set[str]:
    return set(make_images())


@pytest.mark.parametrize("env", ENVS)
def test_bukva_images_are_the_ones_make_builds(env: str) -> None:
    """The same repositories (the tag is the run's: scripts/cluster-*.sh set it everywhere,
    tests/k8s/test_cluster_scripts.py proves that)."""
    built = {split_image(i)[0] for i in built_images()}
    assert len(built) == 4, built
    used = {c["image"] for p in pod_specs(environments()[env]) for c in containers(p.spec)}
    ours = {i for i in used if _is_bukva(i)}
    assert {split_image(i)[0] for i in ours} == built, "every built image is used, no other"
    for image in used:
        repo, tag, digest = split_image(image)
        assert digest or (tag and tag != "latest"), f"{image} is not pinned"
        assert image in ours or repo in THIRD_PARTY_VARS, f"unknown third-party image {image}"


@pytest.mark.parametrize("env", ENVS)
def test_prometheus_scrapes_a_port_the_pod_serves(env: str) -> None:
    scraped = 0
    for pod in pod_specs(environments()[env]):
        ann = pod.annotations
        if ann.get("prometheus.io/scrape") != "true":
            continue
        scraped += 1
        port = int(ann["prometheus.io/port"])
        cs = containers(pod.spec, init=False)
        declared = {p["containerPort"] for c in cs for p in c.get("ports", [])}
        assert port in declared, f"{pod.owner}: scrapes {port}, declares {declared}"
        if pod.kind == "InferenceService":
            # KServe ModelServer serves /metrics on its REST port (tests/k8s/test_execution.py
            # fetches it); the server must be told to listen there.
            assert f"--http_port={port}" in cs[0]["args"], pod.owner
            assert pod.annotations["prometheus.io/path"] == "/metrics"
    assert scraped >= 3, "predictor, transformer and MinIO at least"


def _relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus' relabelling (actions replace, keep, drop, labelmap) of one target's labels;
    None when the target is dropped."""
    labels = dict(labels)
    for c in configs:
        action = c.get("action", "replace")
        regex = re.compile(f"^(?:{c.get('regex', '(.*)')})$")
        value = c.get("separator", ";").join(labels.get(s, "") for s in c.get("source_labels", []))
        replacement = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", c.get("replacement", "$1"))
        if action == "keep" and not regex.match(value):
            return None
        if action == "drop" and regex.match(value):
            return None
        if action == "replace" and (m := regex.match(value)):
            out = m.expand(replacement)
            if out:
                labels[c["target_label"]] = out
            else:
                labels.pop(c["target_label"], None)
        if action == "labelmap":
            for name in list(labels):
                if m := regex.match(name):
                    labels[m.expand(replacement)] = labels[name]
    return labels


def _meta(pod, ip: str = "10.0.0.9") -> dict[str, str]:
    """The labels Kubernetes service discovery (role: pod) gives a pod's target."""

    def clean(name: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", "_", name)

    labels = dict(pod.labels)
    if pod.kind == "InferenceService":  # what KServe adds to its components' pods
        comp = pod.owner.rsplit("/", 1)[1]
        labels |= {"component": comp, "serving.kserve.io/inferenceservice": "bukva"}
    port = containers(pod.spec, init=False)[0].get("ports", [{}])[0].get("containerPort", 80)
    meta = {
        "__address__": f"{ip}:{port}",
        "__metrics_path__": "/metrics",
        "__scheme__": "http",
        "job": "pods",
        "__meta_kubernetes_pod_name": pod.owner.replace("/", "-").lower(),
        "__meta_kubernetes_pod_phase": "Running",
    }
    meta |= {f"__meta_kubernetes_pod_label_{clean(k)}": v for k, v in labels.items()}
    meta |= {f"__meta_kubernetes_pod_annotation_{clean(k)}": v for k, v in pod.annotations.items()}
    return meta


def _selected_jobs() -> dict[str, set[str]]:
    """Every `job="..."` the monitoring page's queries and the chart's rules select, by where."""
    import yaml

    from frontend import monitoring

    queries = [
        q
        for group in (*monitoring.RANGE_QUERIES.values(), monitoring.INSTANT_QUERIES)
        for q in group.values()
    ]
    rules = yaml.safe_load((ROOT / "charts/bukva-platform/files/bukva.rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    out: dict[str, set[str]] = {}
    for where, texts in (("the monitoring page", queries), ("the rules", exprs)):
        for text in texts:
            for job in re.findall(r'\bjob="([^"]+)"', str(text)):
                out.setdefault(job, set()).add(where)
    return out


@pytest.mark.parametrize("env", ENVS)
def test_prometheus_jobs_are_the_ones_the_page_and_rules_select(env: str) -> None:
    """The chart's scrape config, applied to the rendered pods as Kubernetes discovery would
    present them, yields a target per scraped component whose `job` is what the monitoring page
    and the rules select (the local launcher names its jobs the same)."""
    import yaml

    objects = environments()[env]
    [cm] = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-prometheus")
    ]
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    [pods_job] = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    targets = {}
    for pod in pod_specs(objects):
        target = _relabel(_meta(pod), pods_job["relabel_configs"])
        if target is not None:
            targets[pod.owner] = target
    assert targets, "no pod is scraped"
    for owner, target in targets.items():
        port = int(target["__address__"].rsplit(":", 1)[1])
        pod = next(p for p in pod_specs(objects) if p.owner == owner)
        assert port == int(pod.annotations["prometheus.io/port"]), owner
    jobs = {t["job"] for t in targets.values()}
    assert {"predictor", "transformer", "frontend"} <= jobs, targets
    for job, where in _selected_jobs().items():
        assert job in jobs, f'{", ".join(sorted(where))} select job="{job}"; scraped: {jobs}'
    # The same names as the local Prometheus (monitoring/prometheus_config.py: a job per service).
    import dataclasses

    from monitoring.prometheus_config import Targets

    local = {f.name for f in dataclasses.fields(Targets)}
    assert local <= jobs, f"local jobs {local}, cluster jobs {jobs}"


# Settings properties the frontend reads, and the variables they come from.
SETTINGS_PROPERTIES = {"tracking_uri": "MLFLOW_TRACKING_URI", "home": "BUKVA_HOME"}
# Read by the frontend, but right without a value in the pod: the outbox falls back to /tmp
# (frontend/resources.py), the metrics endpoint listens on all addresses by default, the
# feedback rate limit (20 a minute) is no laptop default, nor is the answer's paint pause.
FRONTEND_DEFAULTS_OK = {
    "BUKVA_ANSWER_PAINT_MS",
    "BUKVA_FEEDBACK_OUTBOX",
    "BUKVA_METRICS_ADDRESS",
    "BUKVA_FEEDBACK_PER_MINUTE",
}


def _frontend_reads() -> dict[str, set[str]]:
    """Each bukva setting the frontend's code reads (as its variable), with the files."""
    pattern = re.compile(r"(?:settings\(\)|config|Settings\.from_env\(\))\.([a-z_]+)")
    fields = {v.lower() for v in ENV_VARS}
    reads: dict[str, set[str]] = {}
    for path in sorted((ROOT / "frontend").glob("*.py")):
        for m in pattern.finditer(path.read_text()):
            attr = m[1]
            var = SETTINGS_PROPERTIES.get(attr) or (attr.upper() if attr in fields else None)
            assert var, f"{path.name} reads Settings.{attr}: map it to its variable here"
            reads.setdefault(var, set()).add(path.name)
    return reads


@pytest.mark.parametrize("env", ENVS)
def test_the_frontend_pod_sets_what_its_pages_read(env: str) -> None:
    """Every setting the app's pages read is set in its pod (its Deployment or its image), so
    no page falls back to a laptop default (127.0.0.1, an embedded SQLite registry)."""
    reads = _frontend_reads()
    assert {"MLFLOW_TRACKING_URI", "BUKVA_INFERENCE_URL", "BUKVA_PROMETHEUS_URL"} <= set(reads)
    [pod] = [p for p in pod_specs(environments()[env]) if p.owner.endswith("-frontend")]
    names = {e["name"] for c in containers(pod.spec) for e in c.get("env", [])}
    set_env = " ".join(rest for op, rest in dockerfile_image("frontend").steps if op == "ENV")
    image = set(re.findall(r"\b([A-Z_]+)=", set_env))
    for var, files in reads.items():
        if var in FRONTEND_DEFAULTS_OK:
            continue
        assert var in names | image, (
            f"{', '.join(sorted(files))} read {var}; the pod does not set it"
        )
