"""Served answers equal offline evaluation: the test split, sent as PNGs through the
transformer, must get the same top-1 character as `evaluate` wrote to reports/predictions.csv.

Each test image is rebuilt as the PNG a client would send, holding exactly the pixels
`prepare` normalised: a Rukopys glyph with everything outside its glyphs.csv box painted
paper-coloured (prepare crops to that box), an MNIST digit as a 28x28 greyscale PNG, a
feedback drawing as its own PNG. A disagreement means train/serve skew (or a near-tie) and is
listed in the report.

    python -m bench.parity [--url http://127.0.0.1:8080] [--model_dir models/model]
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bukva.contract import INPUT, LABEL, PROBABILITY, infer_path

BATCH = 32


@dataclass(frozen=True)
class Case:
    id: str
    png: bytes
    predicted: str
    probability: float


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@cache
def _glyph_boxes(csv_path: Path) -> dict[str, tuple[int, int, int, int]]:
    from pipelines.sources.rukopys import read_glyph_table

    return {Path(row.filename).name: row.bbox for row in read_glyph_table(csv_path)}


@cache
def _mnist(folder: Path) -> np.ndarray:
    from pipelines.sources.mnist import read_mnist

    return read_mnist(folder)[0]


def boxed_glyph(path: Path, bbox: tuple[int, int, int, int] | None) -> bytes:
    """The glyph with everything outside `bbox` painted the paper's colour (its border median)."""
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    if bbox is not None:
        r0, r1, c0, c1 = bbox
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        paper = np.median(border, axis=0).astype(np.uint8)
        inside = rgb[max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1].copy()
        rgb[:] = paper
        rgb[max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1] = inside
    return png_bytes(rgb)


def load_cases(predictions: Path, root: Path, use_bbox: bool = True) -> list[Case]:
    """One Case per row of predictions.csv (`file` paths are relative to `root`)."""
    cases = []
    with predictions.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("set", "scanned") != "scanned":
                # The drawn sets are kept as model inputs (data/drawn/*/images.npy), not as the
                # images a client would send, so only the scanned split can go through the server.
                continue
            path = root / row["file"]
            if row["source"] == "mnist":
                png = png_bytes(_mnist(path.parent)[int(row["item"])])
            elif row["source"] == "rukopys":
                boxes = _glyph_boxes(path.parent.parent / "glyphs.csv") if use_bbox else {}
                png = boxed_glyph(path, boxes.get(path.name))
            else:
                png = path.read_bytes()
            cases.append(Case(row["id"], png, row["predicted"], float(row["probability"])))
    return cases


def served(url: str, cases: list[Case]) -> list[tuple[str, float]]:
    """Top-1 character and probability from the transformer, BATCH images per request."""
    answers = []
    with httpx.Client(timeout=60) as client:
        for start in range(0, len(cases), BATCH):
            chunk = cases[start : start + BATCH]
            data = [base64.b64encode(c.png).decode() for c in chunk]
            tensor = {"name": INPUT, "datatype": "BYTES", "shape": [len(data)], "data": data}
            response = client.post(f"{url}{infer_path()}", json={"inputs": [tensor]})
            response.raise_for_status()
            outputs = {o["name"]: o for o in response.json()["outputs"]}
            k = outputs[LABEL]["shape"][1]
            labels, probs = outputs[LABEL]["data"], outputs[PROBABILITY]["data"]
            answers += [(labels[i * k], float(probs[i * k])) for i in range(len(chunk))]
    return answers


def compare(cases: list[Case], answers: list[tuple[str, float]]) -> dict:
    """Agreement of served top-1 with the offline one, and the largest probability gap."""
    mismatches = [
        {"id": c.id, "offline": c.predicted, "served": a, "offline_p": c.probability, "served_p": p}
        for c, (a, p) in zip(cases, answers, strict=True)
        if a != c.predicted
    ]
    gaps = [abs(c.probability - p) for c, (_, p) in zip(cases, answers, strict=True)]
    return {
        "images": len(cases),
        "agree": len(cases) - len(mismatches),
        "max_probability_gap": max(gaps, default=0.0),
        "mismatches": mismatches[:50],
    }


def use_csv_bbox(params: Path = Path("params.yaml")) -> bool:
    """prepare's `use_csv_bbox` knob (True when params.yaml does not say)."""
    import yaml

    if not params.is_file():
        return True
    return bool(
        (yaml.safe_load(params.read_text()) or {}).get("prepare", {}).get("use_csv_bbox", True)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", default="reports/predictions.csv")
    parser.add_argument("--url", help="a running transformer; default: start one on --model_dir")
    parser.add_argument("--model_dir", default="models/model")
    parser.add_argument("--out", default="reports/parity.json")
    args = parser.parse_args()
    predictions = Path(args.predictions)
    if not predictions.is_file():
        print(f"parity: {predictions} not found; run `dvc repro evaluate` first", file=sys.stderr)
        return 1
    cases = load_cases(predictions, Path.cwd(), use_csv_bbox())
    if args.url:
        answers = served(args.url, cases)
    else:
        from launch.serve import Ports, running

        ports = Ports(18180, 18181, 18190, 18191)
        with running(ports, ["--model_dir", args.model_dir], quiet=True):
            answers = served(f"http://127.0.0.1:{ports.transformer_http}", cases)
    report = compare(cases, answers)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(
        f"parity: {report['agree']}/{report['images']} served top-1 equal offline; "
        f"largest probability gap {report['max_probability_gap']:.2e}; see {args.out}"
    )
    return 0 if report["agree"] == report["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
