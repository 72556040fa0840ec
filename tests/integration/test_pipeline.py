"""The real DVC pipeline on a tiny data profile: every stage runs, writes its outputs and
tracks the run in MLflow; a second `dvc repro` does nothing."""

import csv
import json
import sys

import pytest

from tests.support.project import make_project, run

pytestmark = pytest.mark.integration

STAGES = ("ingest", "prepare", "split", "draw", "pretrain", "train", "evaluate")


@pytest.fixture(scope="module")
def project(raw_data, tmp_path_factory):
    path = make_project(tmp_path_factory.mktemp("tiny") / "project", raw_data)
    first = run([sys.executable, "-m", "dvc", "repro"], path)
    return path, first.stdout + first.stderr


def test_every_stage_ran_with_progress_output(project):
    _, output = project
    for stage in STAGES:
        assert f"Running stage '{stage}'" in output
    assert "train: epoch 3/3" in output
    for stage in ("pretrain", "train", "evaluate"):  # every network stage runs pinned kernels
        assert f"{stage}: CPU kernels pinned: ATen AVX2, 1 thread(s)" in output
    assert "digit prior" not in output  # a uniform prior over the classes: no offset
    assert "ingest: per class" in output


def test_metrics_and_plots_are_written(project):
    path, _ = project
    metrics = json.loads((path / "reports" / "metrics.json").read_text())
    for key in (
        "label_accuracy",
        "letters_accuracy",
        "digits_accuracy",
        "top3_accuracy",
        "case_accuracy",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
        for drawn in ("canvas", "block", "combined"):  # beside the scanned set's
            assert 0.0 <= metrics[drawn][key] <= 1.0, (drawn, key)
            low, high = metrics[drawn][f"{key}_interval"]  # 95% Wilson
            assert low <= metrics[drawn][key] <= high, (drawn, key)
    assert metrics["count"] > 0 and metrics["block"]["count"] == 76  # one font, 76 glyphs
    counts = [metrics["count"], metrics["canvas"]["count"], metrics["block"]["count"]]
    assert metrics["combined"]["count"] == sum(counts)
    card = (path / "reports" / "model_card.md").read_text(encoding="utf-8")
    assert f"n={sum(counts)}" in card and "CC BY-SA 3.0" in card
    assert "per_class" not in metrics  # headline figures only
    per_class = json.loads((path / "reports" / "per_class.json").read_text())
    assert set(per_class["scanned"]["per_class"]) <= set("0123456789абвгґ")
    assert len(per_class["block"]["per_letter_case"]) == 33  # case of every letter
    for folder in ("", "canvas/", "block/"):
        for name in ("confusion_labels", "confusion_case", "per_class"):
            assert (path / "reports" / "plots" / f"{folder}{name}.csv").stat().st_size > 0
            assert (path / "reports" / "plots" / f"{folder}{name}.png").stat().st_size > 0
    with (path / "reports" / "predictions.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(metrics[s]["count"] for s in ("canvas", "block")) + metrics["count"]


def test_model_files_are_safetensors_and_json(project):
    path, _ = project
    from bukva.network import load

    files = sorted(p.name for p in (path / "models" / "model").iterdir())
    assert files == ["config.json", "model.safetensors"]
    assert load(path / "models" / "model").config.width == 8


def test_mlflow_run_has_params_epoch_metrics_final_metrics_and_artifacts(project):
    path, _ = project
    import mlflow

    from bukva.registry import weights_digest
    from pipelines.tracking import training_run

    client = mlflow.MlflowClient(f"sqlite:///{path / 'mlruns' / 'mlflow.db'}")
    run_id = training_run(weights_digest(path / "models" / "model"), client)
    assert run_id is not None
    data = client.get_run(run_id).data
    assert data.tags["bukva.stage"] == "train"
    assert data.params["epochs"] == "3" and data.params["width"] == "8"
    losses = [
        m.value
        for m in sorted(client.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)
    ]
    assert len(losses) == 3
    assert losses[-1] < losses[0], f"training loss did not fall: {losses}"
    assert "test_label_accuracy" in data.metrics and "test_case_accuracy" in data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"model", "plots"} <= artifacts
    model_files = {a.path for a in client.list_artifacts(run_id, "model")}
    assert "model/model.safetensors" in model_files


def test_repro_on_an_unchanged_tree_does_nothing(project):
    path, _ = project
    again = run([sys.executable, "-m", "dvc", "repro"], path)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout


def test_dvc_metrics_and_plots_show(project):
    path, _ = project
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], path)
    data = json.loads(shown.stdout)
    files = next(iter(data.values()))["data"]
    columns = ("letters", "digits", "case", "top3", "all")
    for name in ("scanned", "canvas", "block", "combined"):  # one row a set, the same columns
        figures = files[f"reports/metrics/{name}.json"]["data"]
        expected = {f"{c}{s}" for c in columns for s in ("", "_lo", "_hi")} | {"n"}
        assert set(figures) == expected, figures
        for c in columns:  # each figure inside its 95% interval
            assert figures[f"{c}_lo"] <= figures[c] <= figures[f"{c}_hi"], (name, c)
    table = run([sys.executable, "-m", "dvc", "metrics", "show"], path)
    assert "all_lo" in table.stdout.splitlines()[0], table.stdout
    plots = run([sys.executable, "-m", "dvc", "plots", "show", "--json"], path)
    assert "confusion_labels.csv" in plots.stdout


def test_a_registry_that_lost_its_champion_gets_one_again(project, tmp_path):
    """`make up`'s first step (launch/champion.py) with a new, empty tracking store beside an
    up-to-date pipeline: `dvc repro` does nothing, so it registers the trained model again."""
    path, _ = project
    fresh = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    (tmp_path / "fresh").mkdir()
    ensured = run([sys.executable, "-m", "launch.champion"], path, MLFLOW_TRACKING_URI=fresh)
    out = ensured.stdout
    assert "training what changed" in out and "registering the trained model again" in out
    assert out.rstrip().endswith("the registry has bukva-cnn@champion")
    registration = json.loads((path / "reports" / "registration.json").read_text())
    assert registration["promoted"] and registration["champion"] == 1
    run([sys.executable, "-m", "pipelines.register", "--has-champion"], path,
        MLFLOW_TRACKING_URI=fresh)  # fmt: skip
    again = run([sys.executable, "-m", "launch.champion"], path, MLFLOW_TRACKING_URI=fresh)
    assert "dvc repro" not in again.stdout  # it has one now: nothing runs


def test_stage_processes_run_pinned_kernels_whatever_the_environment_says(project):
    """The caps win over a caller's own settings: `python -m pipelines.kernels` (through the
    package every stage imports first) reports AVX2 and one thread, and training again under
    the widest settings the caller can export gives the same model folder, byte for byte
    (weights and config.json: no run id inside, so dvc.lock's hashes reproduce too)."""
    path, _ = project
    widest = {
        "ATEN_CPU_CAPABILITY": "avx512",
        "DNNL_MAX_CPU_ISA": "ALL",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
    }
    shown = json.loads(run([sys.executable, "-m", "pipelines.kernels"], path, **widest).stdout)
    assert shown["pinned"] and shown["aten_capability"] == "AVX2" and shown["threads"] == 1
    native = json.loads(
        run([sys.executable, "-m", "pipelines.kernels"], path, BUKVA_CPU_KERNELS="native").stdout
    )
    assert not native["pinned"]
    # The kernels' fingerprint (a few training steps on fixed data) is the caps', whatever the
    # caller exported: the value two machines compare.
    fingerprints = [
        json.loads(run([sys.executable, "-m", "pipelines.kernels", "--fingerprint"], path, **e)
                   .stdout)["fingerprint"]
        for e in (widest, {})
    ]  # fmt: skip
    assert len(fingerprints[0]) == 16 and fingerprints[0] == fingerprints[1], fingerprints
    train = [sys.executable, "-m", "pipelines.train", "--out", "models/again"]
    again = run(train, path, **widest)
    assert "CPU kernels pinned: ATen AVX2" in again.stdout
    for name in ("model.safetensors", "config.json"):
        first = (path / "models" / "model" / name).read_bytes()
        assert (path / "models" / "again" / name).read_bytes() == first, name
