"""The training Jobs run real DVC stages: every stage a Job names is in dvc.yaml, and every
dependency of those stages is either pulled from the DVC remote (an earlier stage's output)
or baked into the trainer image."""

from __future__ import annotations

import glob

import pytest
import yaml
from dockerfiles import IMAGES, dockerignore, ignored, parse_dockerfile
from k8s_support import ROOT, containers, kustomize, overlays, pod_specs

pytestmark = pytest.mark.k8s


def _job_stages(overlay: str) -> dict[str, list[str]]:
    out = {}
    for pod in pod_specs(kustomize(overlay)):
        for c in containers(pod.spec):
            env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
            out[pod.owner] = env["DVC_STAGES"].split()
            script = " ".join(c["args"])
            assert "dvc repro --pull --single-item $DVC_STAGES" in script
            assert "dvc push $DVC_STAGES" in script
    return out


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
def test_jobs_cover_the_pipeline_after_ingest_in_order(overlay: str) -> None:
    stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    jobs = _job_stages(overlay)
    ran = [s for job in ("Job/bukva-data", "Job/bukva-train") for s in jobs[job]]
    missing = [s for s in ran if s not in stages]
    assert not missing, f"Jobs name stages dvc.yaml lacks: {missing}"
    assert ran == [s for s in stages if s != "ingest"], "every stage after ingest, in order"
    assert ran[-1] == "register", "training ends by registering the champion"


def test_every_stage_dependency_is_pulled_or_in_the_image() -> None:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    produced: set[str] = set()
    for name, stage in dvc.items():
        for dep in stage.get("deps", []):
            if name == "ingest":
                continue  # runs on the laptop (scripts/cluster-train.sh seeds its output)
            if any(dep == o or dep.startswith(o + "/") for o in produced):
                continue
            assert _copied(dep), f"stage {name}: {dep} is neither pulled nor in the trainer image"
        for key in ("outs", "metrics", "plots"):  # cache: false ones are re-made in the same Job
            produced |= {o if isinstance(o, str) else next(iter(o)) for o in stage.get(key, [])}
    assert _copied("params.yaml") and _copied("dvc.yaml")
