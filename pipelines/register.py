"""DVC stage `register`: put the evaluated model in the MLflow registry, behind a promotion gate.

The model folder (safetensors + config.json, never a pickle) is registered as a new version of
`bukva-cnn` with its test metrics, the git commit and the DVC data hash as version tags, plus
`model.onnx`: the same network exported for the predictor's ONNX Runtime and checked against
PyTorch, logged as an MLflow model of the `onnx` flavour (an `MLmodel` with the tensor
signature and an input example), so MLflow's pyfunc loader, and the tools built on it
(`mlflow models serve`, MLServer), read what the registry holds; the model card `evaluate`
generated is its description.
The alias `champion` (what the predictor serves) moves to the new version only if it beats the
current champion on the combined evaluation set (`Gate`: an exact McNemar test on both models'
answers to the same images, the champion's registered files run here; or a margin above seed
noise); otherwise the stage says why, with the figures' intervals and the p-value, and leaves
the champion alone. MLflow stages are not used (deprecated).

Registering the same weights twice reuses the existing version (matched by their sha256), so
`dvc repro --force` does not litter the registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bukva import registry
from bukva.contract import (
    CONFIG_FILE,
    ONNX_FILE,
    PREDICTOR_INPUTS,
    PREDICTOR_OUTPUTS,
    WEIGHTS_FILE,
)
from bukva.registry import (
    CHAMPION_ALIAS,
    GIT_COMMIT_TAG,
    PROMOTION_TAG,
    REGISTERED_MODEL,
    WEIGHTS_TAG,
    Version,
)
from bukva.storage import PROVENANCE_TAG
from pipelines import tracking
from pipelines.common import PARAMS_FILE, StageError, load_params, log, run_cli, write_json
from pipelines.metrics import COMBINED, INTERVAL, correct, load_sets, mcnemar_exact, numbers

ARTIFACT_PATH = "model"
MLMODEL_FILE = "MLmodel"  # MLflow's model descriptor: flavours (onnx, python_function), signature
DESCRIPTION_LIMIT = 5000  # characters MLflow's SQL store keeps of a version description


@dataclass(frozen=True)
class Gate:
    """When a new version may take `champion` (params.yaml `register:`).

    Decided on the combined evaluation set (every image of every evaluation set, `evaluate`'s
    `combined`). `test: mcnemar`: both models read the same images; the new one must read
    right significantly more of the images where exactly one of them is right (exact McNemar,
    one-sided p below `alpha`). `test: margin`, or when the champion cannot read these images
    (another input format): its recorded combined `metric` must be beaten by more than
    `min_improvement`, the spread that training seeds alone cause. Either way `guard_metric`
    (combined) may drop by at most `max_guard_drop`."""

    metric: str = "label_accuracy"
    test: str = "mcnemar"  # mcnemar | margin
    alpha: float = 0.05
    min_improvement: float = 0.01
    guard_metric: str = "case_accuracy"
    max_guard_drop: float = 0.02


TESTS = ("mcnemar", "margin")


@dataclass(frozen=True)
class Paired:
    """Both models' answers on the same images: where only the new one is right (`gained`),
    where only the champion is (`lost`), of `images`."""

    gained: int
    lost: int
    images: int

    @classmethod
    def of(cls, new_correct, champion_correct) -> Paired:
        gained = int((new_correct & ~champion_correct).sum())
        lost = int((~new_correct & champion_correct).sum())
        return cls(gained, lost, len(new_correct))

    @property
    def p_value(self) -> float:
        return mcnemar_exact(self.gained, self.lost)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    p_value: float | None = None


def _figure(metrics: dict[str, float], name: str) -> str:
    """`0.9312 [0.9227, 0.9388]`: a combined figure with its 95% interval when known."""
    value = metrics.get(f"{COMBINED}.{name}")
    if value is None:
        return "?"
    low = metrics.get(f"{COMBINED}.{name}{INTERVAL}_low")
    high = metrics.get(f"{COMBINED}.{name}{INTERVAL}_high")
    return f"{value:.4f}" + (f" [{low:.4f}, {high:.4f}]" if low is not None else "")


def decide(
    new: dict[str, float],
    champion: dict[str, float] | None,
    gate: Gate,
    paired: Paired | None = None,
) -> Decision:
    """The promotion gate, a pure function of both versions' flattened metrics
    (`<set>.<figure>`, as `evaluate.numbers` gives them) and, for the paired test, both models'
    answers on the same images."""
    key = f"{COMBINED}.{gate.metric}"
    if key not in new:
        return Decision(False, f"new model has no {key} metric")
    if champion is None:
        return Decision(True, "there is no champion yet")
    ours = _figure(new, gate.metric)
    theirs = _figure(champion, gate.metric)
    p_value = None
    if gate.test == "mcnemar" and paired is not None:
        p_value = paired.p_value
        how = (
            f"{key} {ours} vs the champion's {theirs} on the same {paired.images} images: "
            f"{paired.gained} gained, {paired.lost} lost, exact McNemar one-sided "
            f"p={p_value:.4g}"
        )
        if not (paired.gained > paired.lost and p_value < gate.alpha):
            return Decision(False, f"{how}, not below {gate.alpha}", p_value)
    else:
        if key not in champion:
            return Decision(True, f"the champion has no {key} to defend")
        why = "" if gate.test == "margin" else " (the champion cannot read these images)"
        how = f"{key} {ours} vs the champion's {theirs}, margin {gate.min_improvement:.4f}{why}"
        if new[key] <= champion[key] + gate.min_improvement:
            return Decision(False, f"{how}: not beaten by more than the margin")
    guard = f"{COMBINED}.{gate.guard_metric}"
    guard_new, guard_old = new.get(guard), champion.get(guard)
    if (
        guard_new is not None
        and guard_old is not None
        and guard_new < guard_old - gate.max_guard_drop
    ):
        return Decision(
            False,
            f"{how}; but {guard} drops from {guard_old:.4f} to {guard_new:.4f}",
            p_value,
        )
    return Decision(True, f"{how}: better", p_value)


def signature():
    """The v2 tensor signature: `image`, `geometry` in; `label_logits`, `uppercase_logit` out."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    def schema(tensors) -> Schema:
        return Schema([TensorSpec(np.dtype("float32"), t.shape, t.name) for t in tensors])

    return ModelSignature(inputs=schema(PREDICTOR_INPUTS), outputs=schema(PREDICTOR_OUTPUTS))


def input_example() -> dict:
    """One blank image with unknown geometry: the example `MLmodel` points at."""
    import numpy as np

    return {t.name: np.zeros((1, *t.shape[1:]), np.float32) for t in PREDICTOR_INPUTS}


def mlflow_model(onnx_path: Path, out_dir: Path, weights_sha: str) -> Path:
    """`out_dir` as an MLflow model of the `onnx` flavour (with `python_function`): `MLmodel`
    (signature, input example, the weights' sha256 as metadata), `model.onnx` in one file (no
    external data), and the environment files; no pickle. The requirements are onnx and
    onnxruntime at their installed versions (no inference run in a subprocess)."""
    import mlflow.onnx
    import onnx

    mlflow.onnx.save_model(
        onnx.load(str(onnx_path)),
        str(out_dir),
        signature=signature(),
        input_example=input_example(),
        pip_requirements=mlflow.onnx.get_default_pip_requirements(),
        onnx_execution_providers=["CPUExecutionProvider"],
        metadata={WEIGHTS_TAG: weights_sha},
        save_as_external_data=False,
    )
    return out_dir


def export_onnx(model_dir: Path, out_dir: Path, weights_sha: str) -> Path:
    """`model.onnx` for the predictor (ONNX Runtime), tagged with the weights' sha256, after
    checking that it answers as PyTorch does (logits within 1e-4 on a random batch).

    Raises:
        StageError: the exported graph disagrees with PyTorch.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    from bukva import network

    net = network.load(model_dir)
    path = network.export_onnx(net, out_dir / ONNX_FILE, {WEIGHTS_TAG: weights_sha})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.random((5, *i.shape[1:]), dtype=np.float32) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    with torch.inference_mode():
        expected = net(*(torch.from_numpy(feeds[i.name]) for i in session.get_inputs()))
    for name, got, want in zip(names, session.run(names, feeds), expected, strict=True):
        worst = float(np.abs(got - want.numpy()).max())
        if worst > 1e-4:
            raise StageError(f"{ONNX_FILE}: {name} differs from PyTorch by {worst:.2e}")
    return path


def dvc_data_tags(lock_path: Path) -> dict[str, str]:
    """`dvc_data_hash` (md5 of data/raw in dvc.lock) plus one tag per data dep of `train`."""
    if not lock_path.is_file():
        return {registry.DATA_HASH_TAG: "unknown"}
    stages = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})
    tags = {}
    for dep in stages.get("train", {}).get("deps", []):
        if str(dep.get("path", "")).startswith("data/") and "md5" in dep:
            tags[f"dvc.{dep['path']}"] = dep["md5"]
    raw = [o for s in stages.values() for o in s.get("outs", []) if o.get("path") == "data/raw"]
    if raw and "md5" in raw[0]:
        tags[registry.DATA_HASH_TAG] = raw[0]["md5"]
    else:
        joined = "".join(f"{k}={v};" for k, v in sorted(tags.items()))
        digest = hashlib.md5(joined.encode()).hexdigest() if joined else "unknown"
        tags[registry.DATA_HASH_TAG] = digest
    return tags


def champion_correct(champion: Version, sets: dict) -> tuple[Any, str]:
    """The champion's answers on the evaluation images (right or wrong, per image of the
    combined set): its weights and config are fetched from the registry and run here, on the
    same images and kernels as the new model. (None, why) when it cannot read them (files
    missing, another network or input format)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in (WEIGHTS_FILE, CONFIG_FILE):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{champion.source}/{name}", dst_path=tmp
                )
            return correct(Path(tmp), sets), ""
    except (MlflowException, OSError, RuntimeError, ValueError, KeyError, StageError) as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def description(card: str) -> str:
    """The model card as a version description: whole when it fits MLflow's 5000 characters,
    else cut at a line with a pointer to the `model_card.md` artifact."""
    if len(card) <= DESCRIPTION_LIMIT:
        return card
    tail = f"\n\n(cut here: the whole card is the version's {ARTIFACT_PATH}/model_card.md)"
    cut = card[: DESCRIPTION_LIMIT - len(tail)].rsplit("\n", 1)[0]
    return cut + tail


def _provenance(client, run_id: str) -> dict[str, str]:
    """The training run's count of reviewed feedback drawings per class (`train` tags it), for
    the version: the Model page shows what the champion learned from."""
    value = client.get_run(run_id).data.tags.get(PROVENANCE_TAG)
    return {PROVENANCE_TAG: value} if value else {}


def register(
    model_dir: Path,
    metrics_path: Path,
    lock_path: Path,
    gate: Gate,
    sets: dict | Callable[[], dict] | None = None,
    card_path: Path | None = None,
) -> dict[str, Any]:
    """Register (or reuse) the model's version and apply the promotion gate.

    Args:
        sets: the evaluation sets (`evaluate.load_sets`) or a function that loads them (called
            only when there is a champion to compare with), for the paired test; None: the
            margin rule.
        card_path: the model card `evaluate` wrote; becomes the version's description.
    Returns:
        What happened: version, promoted, reason, the champion before and after, the paired
        counts and p-value, metrics.
    Raises:
        StageError: a missing input file, or a registry that cannot be reached.
    """
    for path in (model_dir / WEIGHTS_FILE, model_dir / CONFIG_FILE, metrics_path):
        if not path.is_file():
            raise StageError(f"register needs {path}, which does not exist (run evaluate first)")
    metrics = numbers(json.loads(metrics_path.read_text()))
    weights_sha = registry.weights_digest(model_dir)
    card = card_path.read_text(encoding="utf-8") if card_path and card_path.is_file() else None

    from mlflow.tracking import MlflowClient

    tracking.connect()  # fails fast naming a dead server; creates the embedded store's folder
    client = MlflowClient()
    training_run = tracking.training_run(weights_sha, client)
    paired = None
    with tracking.stage_run("register", run_id=training_run, verify=False) as run:
        version = registry.version_by_weights(client, weights_sha)
        if version is None:
            logged = tracking.artifact_files(run.run_id, ARTIFACT_PATH)
            if f"{ARTIFACT_PATH}/{WEIGHTS_FILE}" not in logged:  # not the training run's store
                run.log_artifacts(model_dir, ARTIFACT_PATH)
                run.log_metrics({f"test_{k}": v for k, v in metrics.items()})
            if card is not None:
                client.log_text(run.run_id, card, f"{ARTIFACT_PATH}/model_card.md")
            with tempfile.TemporaryDirectory() as tmp:
                onnx = export_onnx(model_dir, Path(tmp), weights_sha)
                flavoured = mlflow_model(onnx, Path(tmp) / ARTIFACT_PATH, weights_sha)
                client.log_artifacts(run.run_id, str(flavoured), ARTIFACT_PATH)
            tags = registry.metric_tags(metrics) | dvc_data_tags(lock_path)
            tags |= {GIT_COMMIT_TAG: tracking.git_commit(), WEIGHTS_TAG: weights_sha}
            tags |= _provenance(client, run.run_id)
            version = tracking.register_verified(
                run.run_id,
                ARTIFACT_PATH,
                REGISTERED_MODEL,
                required=[WEIGHTS_FILE, CONFIG_FILE, MLMODEL_FILE, ONNX_FILE],
                tags=tags,
            )
            log("register", f"{REGISTERED_MODEL} version {version.version} registered")
        else:
            log("register", f"same weights as version {version.version}; not registering again")
        if card is not None:
            client.update_model_version(REGISTERED_MODEL, version.version, description(card))
        champion = registry.version_by_alias(client)
        before = champion.version if champion else None
        if before == str(version.version):
            decision = Decision(False, f"version {version.version} is already the champion")
        else:
            champion_metrics = champion.metrics if champion else None
            if champion is not None and sets is not None and gate.test == "mcnemar":
                sets = sets() if callable(sets) else sets  # loaded only when needed
                theirs, why = champion_correct(champion, sets)
                if theirs is None:
                    log("register", f"the champion cannot read the evaluation images ({why})")
                else:
                    paired = Paired.of(correct(model_dir, sets), theirs)
            decision = decide(metrics, champion_metrics, gate, paired)
        if decision.promote:
            client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, version.version)
        verdict_tags = {PROMOTION_TAG: decision.reason, "gate.test": gate.test}
        if paired is not None:
            verdict_tags |= {
                "gate.p_value": f"{decision.p_value:.6g}",
                "gate.gained": str(paired.gained),
                "gate.lost": str(paired.lost),
                "gate.images": str(paired.images),
            }
        for key, value in verdict_tags.items():
            client.set_model_version_tag(REGISTERED_MODEL, version.version, key, value)
    after = version.version if decision.promote else before
    verdict = "promoted to" if decision.promote else "not promoted to"
    log("register", f"version {version.version} {verdict} @{CHAMPION_ALIAS}: {decision.reason}")
    return {
        "model": REGISTERED_MODEL,
        "version": int(version.version),
        "promoted": decision.promote,
        "reason": decision.reason,
        "p_value": decision.p_value,
        "paired": None if paired is None else asdict(paired),
        "champion_before": int(before) if before else None,
        "champion": int(after) if after else None,
        "gate": asdict(gate),
        "metrics": metrics,
    }


def load_gate(path: str | Path = PARAMS_FILE) -> Gate:
    """The gate from params.yaml's `register:` section; defaults where it is absent.

    Raises:
        StageError: an unknown key or test.
    """
    try:
        values = load_params("register", path)
    except StageError:
        return Gate()
    unknown = set(values) - set(Gate.__dataclass_fields__)
    if unknown:
        raise StageError(f"{path}: unknown register params {sorted(unknown)}")
    gate = Gate(**values)
    if gate.test not in TESTS:
        allowed = ", ".join(TESTS)
        raise StageError(f"{path}: register.test must be one of {allowed}, got {gate.test!r}")
    return gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model", help="model folder to register")
    parser.add_argument("--metrics", default="reports/metrics.json", help="evaluate's test metrics")
    parser.add_argument("--lock", default="dvc.lock", help="where the DVC data hash comes from")
    parser.add_argument("--out", default="reports/registration.json", help="what happened")
    parser.add_argument("--card", default="reports/model_card.md", help="evaluate's model card")
    parser.add_argument("--prepared", default="data/prepared", help="for the paired test")
    parser.add_argument("--split", default="data/split")
    parser.add_argument("--drawn", default="data/drawn")
    parser.add_argument(
        "--has-champion",
        action="store_true",
        help="register nothing; exit 0 if the registry has a champion, else 1 (for `make up`)",
    )
    args = parser.parse_args()
    if args.has_champion:
        sys.exit(0 if tracking.has_champion() else 1)
    gate = load_gate()

    def sets() -> dict:
        return load_sets(Path(args.prepared), Path(args.split), Path(args.drawn))

    result = register(
        Path(args.model), Path(args.metrics), Path(args.lock), gate, sets, Path(args.card)
    )
    write_json(args.out, result)


if __name__ == "__main__":
    run_cli("register", main)
