"""helm lint / helm template for both charts with default and kind values, and the toggles."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from k8s_support import (
    CHARTS,
    RELEASES,
    REQUIRED_SETS,
    ROOT,
    RenderError,
    containers,
    hook_secrets,
    kustomize,
    pod_specs,
    render,
    run_tool,
)

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("values", [(), ("values-kind.yaml",)], ids=["default", "kind"])
@pytest.mark.parametrize("chart", sorted(RELEASES))
def test_helm_lint_is_clean(chart: str, values: tuple[str, ...]) -> None:
    args = ["helm", "lint", "--strict", str(CHARTS / chart), "-n", "bukva"]
    for v in values:
        args += ["-f", str(CHARTS / chart / v)]
    for s in REQUIRED_SETS[chart]:
        args += ["--set", s]
    out = run_tool(args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("values", [(), ("values-kind.yaml",)], ids=["default", "kind"])
@pytest.mark.parametrize("chart", sorted(RELEASES))
def test_every_object_has_the_chart_labels(chart: str, values: tuple[str, ...]) -> None:
    objects = render(chart, values)
    assert objects
    for obj in objects:
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "bukva", obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/instance") == RELEASES[chart]
        assert labels.get("helm.sh/chart", "").startswith(chart + "-")


def _kinds(objects: list[dict]) -> set[str]:
    return {f"{o['kind']}/{o['metadata']['name']}" for o in objects}


def test_platform_renders_every_service_by_default() -> None:
    kinds = _kinds(render("bukva-platform"))
    for expected in (
        "Deployment/bukva-platform-minio",
        "StatefulSet/bukva-platform-postgres",
        "Deployment/bukva-platform-mlflow",
        "Job/bukva-platform-bucket-init",
        "Deployment/bukva-platform-prometheus",
        "Job/bukva-platform-secrets",  # makes the Secrets in the cluster (test_secrets.py)
        "Pod/bukva-platform-test",
    ):
        assert expected in kinds
    assert not any(k.startswith("Ingress/") for k in kinds), "ingress is off by default"
    assert "Ingress/bukva-platform" in _kinds(render("bukva-platform", ("values-kind.yaml",)))


def test_minio_off_needs_an_endpoint_and_then_uses_it() -> None:
    with pytest.raises(RenderError, match=r"s3\.endpoint is required"):
        render("bukva-platform", sets=("minio.enabled=false",))
    objects = render(
        "bukva-platform", sets=("minio.enabled=false", "s3.endpoint=https://s3.example.org")
    )
    assert not any("minio" in k for k in _kinds(objects))
    mlflow = next(
        o
        for o in objects
        if o["metadata"]["name"] == "bukva-platform-mlflow" and o["kind"] == "Deployment"
    )
    env = {
        e["name"]: e.get("value")
        for e in mlflow["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["AWS_ENDPOINT_URL"] == "https://s3.example.org"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "https://s3.example.org"


def test_existing_secrets_replace_generated_ones_everywhere() -> None:
    users = ("frontend", "training", "mlflow", "predictor")
    objects = render(
        "bukva-platform",
        sets=(
            "s3.existingSecret=my-s3",
            "postgres.existingSecret=my-pg",
            *(f"s3.users.{u}.existingSecret=my-{u}" for u in users),
        ),
    )
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert not [o for o in objects if o["metadata"]["name"] == "bukva-platform-secrets"]
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for p in pod_specs(objects)
        for c in containers(p.spec)
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    mounted = {
        v["secret"]["secretName"]
        for p in pod_specs(objects)
        for v in p.spec.get("volumes", [])
        if "secret" in v
    }
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    assert refs == {(f"my-{n}", k) for n in ("s3", *users) for k in keys} | {("my-pg", "password")}
    assert mounted == {f"my-{u}" for u in users}  # the s3-users Job reads them as files


def test_app_chart_toggles() -> None:
    default = _kinds(render("bukva"))
    assert {
        "InferenceService/bukva",
        "Deployment/bukva-frontend",
        "Service/bukva-frontend",
    } <= default
    no_frontend = _kinds(render("bukva", sets=("frontend.enabled=false", "ingress.enabled=true")))
    assert "Deployment/bukva-frontend" not in no_frontend
    ingress = next(
        o
        for o in render("bukva", sets=("frontend.enabled=false", "ingress.enabled=true"))
        if o["kind"] == "Ingress"
    )
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["api.bukva.localhost"]


def test_image_tag_is_required() -> None:
    with pytest.raises(RenderError, match="image tag is required"):
        render("bukva", sets=("predictor.image.tag=",))


def undocumented_values(text: str) -> list[str]:
    """Leaf keys of a values file documented neither by a comment (the line above, or at the end
    of the line) nor by a comment on the map that directly holds them."""
    lines = text.splitlines()
    missing: list[str] = []
    parents: list[tuple[int, bool]] = []  # (indent, commented) of the enclosing maps
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        key, _, rest = stripped.partition(":")
        indent = len(line) - len(line.lstrip())
        parents = [p for p in parents if p[0] < indent]
        commented = (i > 0 and lines[i - 1].strip().startswith("#")) or "#" in rest
        following = [ln for ln in lines[i + 1 :] if ln.strip() and not ln.strip().startswith("#")]
        nxt = following[0] if following else ""
        if not rest.strip() and len(nxt) - len(nxt.lstrip()) > indent:
            parents.append((indent, commented))
        elif not commented and not (parents and parents[-1][1]):
            missing.append(key)
    return missing


@pytest.mark.parametrize(
    "values", sorted(CHARTS.glob("*/values*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_value_is_commented(values) -> None:
    assert not undocumented_values(values.read_text()), values


def test_undocumented_value_is_found() -> None:
    assert undocumented_values("a:\n  # -- fine\n  b: 1\n  c: 2\n") == ["c"]
    assert undocumented_values("# -- the block\na:\n  b: 1\nc:\n  d: 2 # ok\n") == []


def test_both_charts_link_the_one_helper_library() -> None:
    library = CHARTS / "bukva-lib"
    assert yaml.safe_load((library / "Chart.yaml").read_text())["type"] == "library"
    for chart in RELEASES:
        link = CHARTS / chart / "charts" / "bukva-lib"
        assert link.is_symlink() and link.resolve() == library.resolve(), link
        deps = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())["dependencies"]
        assert {
            "name": "bukva-lib",
            "version": "0.1.0",
            "repository": "file://../bukva-lib",
        } in deps
        # Names, labels, images and security contexts are defined in the library only.
        own = (CHARTS / chart / "templates" / "_helpers.tpl").read_text()
        defined = re.findall(r'define "([^"]+)"', own)
        assert not [d for d in defined if d.split(".")[-1] in LIBRARY_HELPERS], defined


LIBRARY_HELPERS = {"name", "fullname", "labels", "selectorLabels", "image", "chart"}


def _template(chart: str, release: str, *sets: str) -> list[dict]:
    args = ["helm", "template", release, str(CHARTS / chart), "-n", "bukva"]
    for s in REQUIRED_SETS[chart] + sets:
        args += ["--set", s]
    out = run_tool(args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _refs(objects: list[dict]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret a container's env names."""
    out = set()
    for p in pod_specs(objects):
        for c in containers(p.spec):
            for e in c.get("env", []):
                src = e.get("valueFrom", {})
                if "configMapKeyRef" in src:
                    out.add(("ConfigMap", src["configMapKeyRef"]["name"]))
                if "secretKeyRef" in src:
                    out.add(("Secret", src["secretKeyRef"]["name"]))
    return out


@pytest.mark.parametrize("release", ["bukva-platform", "lab"])
def test_app_finds_the_platform_by_its_release_name(release: str) -> None:
    platform = _template("bukva-platform", release)
    app = _template("bukva", "bukva", f"platform.release={release}")
    made = {(o["kind"], o["metadata"]["name"]) for o in platform + hook_secrets(platform)}
    assert _refs(app) <= made, _refs(app) - made
    prefix = "bukva-platform" if release == "bukva-platform" else f"{release}-bukva-platform"
    assert ("ConfigMap", f"{prefix}-endpoints") in _refs(app)


def test_platform_urls_are_written_once() -> None:
    """The platform's Service URLs appear in its endpoints ConfigMap, nowhere in the app's or
    the training Jobs' manifests: those read them from the ConfigMap."""
    endpoints = next(
        o for o in render("bukva-platform") if o["metadata"]["name"] == "bukva-platform-endpoints"
    )
    urls = endpoints["data"]
    assert urls["MLFLOW_TRACKING_URI"] == "http://bukva-platform-mlflow:5000"
    assert urls["AWS_ENDPOINT_URL"] == "http://bukva-platform-minio:9000"
    assert urls["DVC_REMOTE_URL"] == "s3://dvc/bukva"
    assert urls["BUKVA_FEEDBACK_URI"] == "s3://feedback/drawings"
    hosts = (
        "bukva-platform-mlflow",
        "bukva-platform-minio",
        "bukva-platform-prometheus",
        "s3://feedback",
        "s3://dvc",
    )
    consumers = render("bukva") + kustomize("kind") + kustomize("cluster")
    text = yaml.safe_dump_all(consumers)
    assert not [h for h in hosts if h in text]
    for folder in (CHARTS / "bukva", ROOT / "kustomize"):
        for path in folder.rglob("*.yaml"):
            assert not [h for h in hosts if h in path.read_text()], path
    no_prometheus = render("bukva-platform", sets=("prometheus.enabled=false",))
    cm = next(o for o in no_prometheus if o["metadata"]["name"] == "bukva-platform-endpoints")
    assert "BUKVA_PROMETHEUS_URL" not in cm["data"]  # the app's reference to it is optional


def test_mlflow_server_runs_no_server_side_jobs() -> None:
    mlflow = next(
        o
        for o in render("bukva-platform", ("values-kind.yaml",))
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "bukva-platform-mlflow"
    )
    env = {
        e["name"]: e.get("value")
        for e in mlflow["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_the_app_declares_the_model_version_it_serves() -> None:
    out = run_tool(["helm", "template", "bukva", str(CHARTS / "bukva"), "-n", "bukva"])
    assert out.returncode != 0 and "predictor.modelVersion is required" in out.stderr
    assert (
        "@"
        not in yaml.safe_load((CHARTS / "bukva" / "values.yaml").read_text())["predictor"][
            "modelUri"
        ]
    ), "no floating alias by default"
    # The predictor is told the version it is deployed with (it reports it; it never searches
    # the registry for its weights); a modelUri alone names no version.
    for sets, uri, version in (
        (("predictor.modelVersion=5",), "models:/bukva-cnn/5", ["--model_version=5"]),
        (
            ("predictor.modelUri=s3://mlflow/run/model", "predictor.modelVersion="),
            "s3://mlflow/run/model",
            [],
        ),
        (
            ("predictor.modelUri=s3://mlflow/run/model", "predictor.modelVersion=6"),
            "s3://mlflow/run/model",
            ["--model_version=6"],
        ),
    ):
        isvc = next(
            o for o in _template("bukva", "bukva", *sets) if o["kind"] == "InferenceService"
        )
        container = isvc["spec"]["predictor"]["containers"][0]
        assert {"name": "BUKVA_MODEL_URI", "value": uri} in container["env"]
        assert [a for a in container["args"] if a.startswith("--model_version")] == version


def _s3_keys(objects: list[dict]) -> dict[str, set[str]]:
    """owner -> the S3 key Secrets its pod reads (env, envFrom or a volume)."""
    out: dict[str, set[str]] = {}
    for pod in pod_specs(objects):
        names = {v["secret"]["secretName"] for v in pod.spec.get("volumes", []) if "secret" in v}
        for c in containers(pod.spec):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef", {})
                if ref.get("key") in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
                    names.add(ref["name"])
            names |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
        names = {n for n in names if n.startswith("bukva-platform-s3")}
        if names:
            out[pod.owner] = names
    return out


def test_each_pod_holds_only_its_own_object_store_key() -> None:
    """Each client reads its own MinIO user's Secret; only MinIO and the two hook Jobs hold
    the root key. The predictor holds none: it downloads a registry version through MLflow's
    artifact proxy (test_execution.py runs it so); only an s3:// modelUri gives it its own
    read-only key."""
    root, user = "bukva-platform-s3", "bukva-platform-s3-{}".format
    clients = {user(c) for c in ("frontend", "training", "mlflow", "predictor")}
    objects = render("bukva-platform") + render("bukva") + kustomize("kind")
    assert _s3_keys(objects) == {
        "Deployment/bukva-platform-minio": {root},  # MINIO_ROOT_USER/PASSWORD
        "Job/bukva-platform-bucket-init": {root},
        "Job/bukva-platform-s3-users": {root} | clients,
        "Deployment/bukva-platform-mlflow": {user("mlflow")},
        "Pod/bukva-platform-test": clients,  # each client's key against its policy
        "Deployment/bukva-frontend": {user("frontend")},
        "Job/bukva-data": {user("training")},
        "Job/bukva-train": {user("training")},
    }
    # every key a pod names is a Secret the platform's hook Job creates
    secrets = {o["metadata"]["name"] for o in hook_secrets(objects)}
    assert set().union(*_s3_keys(objects).values()) <= secrets
    s3_model = _template("bukva", "bukva", "predictor.modelUri=s3://mlflow/run/model")
    assert _s3_keys(s3_model)["InferenceService/bukva/predictor"] == {user("predictor")}


@pytest.mark.parametrize("persistent", [True, False])
def test_queued_feedback_lives_on_the_outbox_volume(persistent: bool) -> None:
    """The app's outbox (feedback waiting for MinIO) is where BUKVA_FEEDBACK_OUTBOX points, on a
    PersistentVolumeClaim of its own by default, so a pod restart or a rollout loses none."""
    sets = () if persistent else ("frontend.outbox.persistence.enabled=false",)
    objects = render("bukva", sets=sets)
    deployment = next(
        o for o in objects if o["kind"] == "Deployment" and "frontend" in o["metadata"]["name"]
    )
    spec = deployment["spec"]["template"]["spec"]
    [app] = containers(spec, init=False)
    env = {e["name"]: e.get("value") for e in app["env"]}
    mounts = {m["mountPath"]: m["name"] for m in app["volumeMounts"]}
    assert env["BUKVA_FEEDBACK_OUTBOX"] in mounts
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[env["BUKVA_FEEDBACK_OUTBOX"]])
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    if persistent:
        assert volume["persistentVolumeClaim"]["claimName"] in claims
    else:
        assert "emptyDir" in volume and not claims
    assert int(env["BUKVA_FEEDBACK_OUTBOX_MAX"]) > 0


def test_the_api_ingress_limits_request_bodies() -> None:
    """Traefik refuses a body larger than ingress.bodyLimit on the API host (Middleware named
    in the API Ingress's router.middlewares as <namespace>-<name>@kubernetescrd); the app's host,
    which carries Streamlit's websocket, has no buffering."""
    objects = render("bukva", ("values-kind.yaml",))
    [middleware] = [o for o in objects if o["kind"] == "Middleware"]
    ingresses = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}
    api, app = ingresses["bukva-api"], ingresses["bukva"]
    annotation = "traefik.ingress.kubernetes.io/router.middlewares"
    assert api["metadata"]["annotations"][annotation] == (
        f"bukva-{middleware['metadata']['name']}@kubernetescrd"  # namespace bukva (helm -n)
    )
    assert annotation not in (app["metadata"].get("annotations") or {})
    [rule] = api["spec"]["rules"]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "bukva-transformer"
    limit = middleware["spec"]["buffering"]["maxRequestBodyBytes"]
    # a v2 request with one 280x280 RGBA canvas as JSON numbers (the largest single drawing)
    # passes; the limit is below the transformer's own (transformer/images.py: 16 MiB)
    canvas = {
        "inputs": [
            {
                "name": "image",
                "shape": [1, 280, 280, 4],
                "datatype": "UINT8",
                "data": [255] * (280 * 280 * 4),
            }
        ]
    }
    assert len(json.dumps(canvas).encode()) < limit <= 16 * 1024 * 1024
    # kind's Traefik reads Middlewares (k3s's does by default)
    traefik = yaml.safe_load((ROOT / "k8s" / "traefik-values.yaml").read_text())
    assert traefik["providers"]["kubernetesCRD"]["enabled"] is True
    # off: no Middleware and no annotation (another ingress controller)
    off = render("bukva", ("values-kind.yaml",), ("ingress.bodyLimit.enabled=false",))
    assert not [o for o in off if o["kind"] == "Middleware"]
    assert all(
        annotation not in (o["metadata"].get("annotations") or {})
        for o in off
        if o["kind"] == "Ingress"
    )
