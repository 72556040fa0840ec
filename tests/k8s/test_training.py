"""The training Jobs run real DVC stages: every stage a Job names is in dvc.yaml, and every
dependency of those stages is either pulled from the DVC remote (an earlier stage's output)
or baked into the trainer image; both Jobs come from one template."""

from __future__ import annotations

import glob

import pytest
import yaml
from dockerfiles import IMAGES, dockerignore, ignored, parse_dockerfile
from k8s_support import ROOT, containers, kustomize, overlays, pod_specs

pytestmark = pytest.mark.k8s


def _job_stages(overlay: str) -> dict[str, list[str]]:
    objects = kustomize(overlay)
    out = {}
    for pod in pod_specs(objects):
        for c in containers(pod.spec):
            env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
            out[pod.owner] = env["DVC_STAGES"].split()
            script = _mounted_script(objects, pod.spec, c)
            assert "dvc repro --pull --single-item $DVC_STAGES" in script
            assert "dvc push $DVC_STAGES" in script
    return out


def _mounted_script(objects: list[dict], spec: dict, container: dict) -> str:
    """The file the container's command runs, from the ConfigMap volume mounted there."""
    path = container["command"][-1]
    mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    cm = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == volume["configMap"]["name"]
    )
    return cm["data"][path.removeprefix(mount["mountPath"] + "/")]


def _copied(path: str) -> bool:
    df = parse_dockerfile(ROOT / IMAGES["trainer"][0])
    patterns = dockerignore()
    for sources in df.copies:
        for src in sources:
            for match in glob.glob(src, root_dir=ROOT) or [src]:
                base = match.rstrip("/")
                if (path == base or path.startswith(base + "/")) and not ignored(path, patterns):
                    return True
    return False


@pytest.mark.parametrize("overlay", overlays())
def test_jobs_cover_the_whole_pipeline_in_order(overlay: str) -> None:
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    jobs = _job_stages(overlay)
    ran = [s for job in ("Job/bukva-data", "Job/bukva-train") for s in jobs[job]]
    missing = [s for s in ran if s not in stages]
    assert not missing, f"Jobs name stages dvc.yaml lacks: {missing}"
    assert ran == stages, "every stage, in order: the data Job ingests in the cluster"
    data = next(p for p in pod_specs(kustomize(overlay)) if p.owner == "Job/bukva-data")
    env = {e["name"]: e.get("value") for e in data.spec["containers"][0]["env"]}
    assert env["DVC_FORCE"] == "ingest", "ingest re-reads the source and the feedback store"
    assert ran[-1] == "register", "training ends by registering the champion"


def test_every_stage_dependency_is_pulled_or_in_the_image() -> None:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    produced: set[str] = set()
    for name, stage in dvc.items():
        for dep in stage.get("deps", []):
            if any(dep == o or dep.startswith(o + "/") for o in produced):
                continue
            assert _copied(dep), f"stage {name}: {dep} is neither pulled nor in the trainer image"
        for key in ("outs", "metrics", "plots"):  # cache: false ones are re-made in the same Job
            produced |= {o if isinstance(o, str) else next(iter(o)) for o in stage.get(key, [])}
    assert _copied("params.yaml") and _copied("dvc.yaml")


def _differences(a: object, b: object, path: str = "") -> set[str]:
    """Paths where two manifests differ (lists compared item by item)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {
            d for k in a.keys() | b.keys() for d in _differences(a.get(k), b.get(k), f"{path}/{k}")
        }
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return {
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{path}/{i}")
        }
    return set() if a == b else {path}


# What the data and train instances of kustomize/base/job may change; the rest is shared.
INSTANCE_FIELDS = {
    "/metadata/name",
    "/metadata/labels/app.kubernetes.io/name",
    "/spec/template/metadata/labels/app.kubernetes.io/name",
    "/spec/suspend",
    "/spec/activeDeadlineSeconds",
    "/spec/template/spec/containers/0/env/0/value",  # DVC_STAGES
    "/spec/template/spec/containers/0/env/1/value",  # DVC_FORCE
    "/spec/template/spec/containers/0/resources",
}


@pytest.mark.parametrize("overlay", overlays())
def test_training_jobs_are_one_template(overlay: str) -> None:
    objects = kustomize(overlay)
    data, train = (
        next(o for o in objects if o["kind"] == "Job" and o["metadata"]["name"] == name)
        for name in ("bukva-data", "bukva-train")
    )
    diff = _differences(data, train)
    shared = [p for p in diff if not any(p == f or p.startswith(f + "/") for f in INSTANCE_FIELDS)]
    assert not shared, f"the Jobs differ outside their instance fields: {shared}"
    assert "/spec/template/spec/containers/0/env/0/value" in diff
    assert [
        p.name for p in (ROOT / "kustomize").rglob("*.yaml") if "kind: Job\n" in p.read_text()
    ] == ["job.yaml"], "one Job template"
