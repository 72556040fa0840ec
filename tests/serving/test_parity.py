"""Served answers equal offline evaluation: every test-split image, sent as a PNG through the
transformer, gets the top-1 character `evaluate` recorded. Needs the pipeline's outputs
(models/model and reports/predictions.csv); skipped until `dvc repro evaluate` has run, a
failure under CI (tests/support/outputs.py)."""

from __future__ import annotations

import pytest
from serving_helpers import ROOT, Server

from tests.support.outputs import require

pytestmark = pytest.mark.integration
PREDICTIONS = ROOT / "reports" / "predictions.csv"
MODEL = ROOT / "models" / "model"


@pytest.fixture(scope="module")
def trained_transformer(logs):
    require([MODEL / "model.safetensors", PREDICTIONS], "the trained model and its predictions")
    predictor = Server("model", ["--model_dir", str(MODEL)], logs).start()
    host = f"127.0.0.1:{predictor.http_port}"
    transformer = Server("transformer", ["--predictor_host", host], logs).start()
    yield transformer
    transformer.stop()
    predictor.stop()


def test_test_split_through_the_transformer_matches_evaluate(trained_transformer):
    from bench.parity import compare, load_cases, served, use_csv_bbox

    cases = load_cases(PREDICTIONS, ROOT, use_csv_bbox(ROOT / "params.yaml"))
    assert cases, "predictions.csv lists no test images"
    report = compare(cases, served(trained_transformer.url, cases))
    assert report["agree"] == report["images"], report["mismatches"][:5]
    assert report["max_probability_gap"] < 1e-3


def test_parity_pngs_hold_exactly_the_pixels_prepare_normalised(tmp_path):
    """The PNG sent for each test image decodes and normalises to prepare's array, bit for bit,
    so any served/offline disagreement could only come from the model, not the input."""
    import csv

    import numpy as np

    from bench.parity import load_cases, use_csv_bbox
    from bukva.preprocess import decode_image, normalize

    prepared, split_csv = ROOT / "data" / "prepared", ROOT / "data" / "split" / "split.csv"
    require([prepared / "images.npy", split_csv], "the prepared data and its split")
    with split_csv.open(newline="") as f:
        test_ids = {row["id"] for row in csv.DictReader(f) if row["split"] == "test"}
    with (prepared / "index.csv").open(newline="") as f:
        rows = [(i, r) for i, r in enumerate(csv.DictReader(f)) if r["id"] in test_ids]
    images = np.load(prepared / "images.npy", mmap_mode="r")
    listing = tmp_path / "predictions.csv"  # load_cases reads evaluate's file format
    with listing.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "source", "file", "item", "predicted", "probability"])
        for _, r in rows:
            writer.writerow([r["id"], r["source"], r["file"], r["item"], "?", 0])
    cases = load_cases(listing, ROOT, use_csv_bbox(ROOT / "params.yaml"))
    assert len(cases) == len(rows) > 0
    for (index, row), case in zip(rows, cases, strict=True):
        served_input = normalize(decode_image(case.png))
        assert np.array_equal(served_input, images[index]), row["id"]
