"""Does training give the same weights whatever the CPU kernels and threads? (pipelines/cpu.py)

Runs the real `train` and `evaluate` stages (`python -m pipelines.train`, `... evaluate`) on
existing data several times, each in a fresh process and folder with a shortened `train:`
section, under different kernel settings, and prints per run the weights' sha256, the
evaluate figures and the wall time:

    python -m bench.determinism --data data --pretrained models/pretrained --epochs 2

- `pinned`: the project's caps (AVX2 kernels, params.yaml's threads: 2), as every stage runs;
- `pinned-1-thread`: the caps with `threads: 1` in params (torch.set_num_threads(1));
- `pinned-avx512-env`: the caps while the caller exported ATEN_CPU_CAPABILITY=avx512;
- `native`: BUKVA_CPU_KERNELS=native, the widest kernels the CPU has (AVX-512 here);
- `native-1-thread`: native with `threads: 1`;
- `native-avx2`: native, but ATEN_CPU_CAPABILITY=avx2 only (oneDNN and MKL still widest);
- any of them with `-again`: the same run repeated (timing noise; the same weights).

Each run's train stage is timed in wall and CPU seconds (CPU time hardly moves when other work
shares the machine).

It writes nothing into the project; the data folder is only read (symlinked into each run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bukva.registry import weights_digest

ROOT = Path(__file__).resolve().parent.parent
KERNEL_VARS = (
    "ATEN_CPU_CAPABILITY",
    "DNNL_MAX_CPU_ISA",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_DYNAMIC",
    "BUKVA_CPU_KERNELS",
)
VARIANTS = {
    "pinned": ({}, {}),
    "pinned-1-thread": ({}, {"threads": 1}),
    "pinned-avx512-env": ({"ATEN_CPU_CAPABILITY": "avx512"}, {}),
    "native": ({"BUKVA_CPU_KERNELS": "native"}, {}),
    "native-1-thread": ({"BUKVA_CPU_KERNELS": "native"}, {"threads": 1}),
    "native-avx2": ({"BUKVA_CPU_KERNELS": "native", "ATEN_CPU_CAPABILITY": "avx2"}, {}),
}
for _name in list(VARIANTS):  # the same again, to see what timing alone varies by
    VARIANTS[f"{_name}-again"] = VARIANTS[_name]


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process so far: unlike wall time, it
    hardly moves when other work shares the machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_variant(
    name: str, data: Path, epochs: int, samples: int, work: Path, pretrained: Path | None
) -> dict:
    extra_env, extra_train = VARIANTS[name]
    folder = work / name
    folder.mkdir(parents=True)
    (folder / "data").symlink_to(data.resolve())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] |= {"epochs": epochs, "samples_per_epoch": samples} | extra_train
    (folder / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    env |= {
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "BUKVA_HOME": str(folder),
    } | extra_env
    data = ["--prepared", "data/prepared", "--split", "data/split", "--drawn", "data/drawn"]
    pretrained_arg = str(pretrained.resolve()) if pretrained else ""
    train = [sys.executable, "-m", "pipelines.train", *data, "--pretrained", pretrained_arg]
    train += ["--out", "models/model"]
    evaluate = [sys.executable, "-m", "pipelines.evaluate", *data, "--model", "models/model"]
    evaluate += ["--reports", "reports"]
    started, cpu_before = time.perf_counter(), _children_cpu()
    out = subprocess.run(train, cwd=folder, env=env, capture_output=True, text=True)
    seconds, cpu_seconds = time.perf_counter() - started, _children_cpu() - cpu_before
    if out.returncode:
        raise SystemExit(f"{name}: train failed\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    kernels = next((line for line in out.stdout.splitlines() if "CPU kernels" in line), "")
    ev = subprocess.run(evaluate, cwd=folder, env=env, capture_output=True, text=True)
    if ev.returncode:
        raise SystemExit(f"{name}: evaluate failed\n{ev.stdout[-2000:]}\n{ev.stderr[-2000:]}")
    metrics = json.loads((folder / "reports" / "metrics.json").read_text())
    return {
        "variant": name,
        "kernels": kernels.split("train: ", 1)[-1],
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "weights_sha256": weights_digest(folder / "models" / "model")[:16],
        "combined": metrics.get("combined", {}).get("label_accuracy"),
        "scanned": metrics.get("label_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--pretrained", type=Path, help="start from this body (models/pretrained)")
    parser.add_argument("--out", type=Path, help="also write the results here (JSON)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bukva-determinism-"))
    results = []
    try:
        for name in args.variants:
            results.append(
                run_variant(name, args.data, args.epochs, args.samples, work, args.pretrained)
            )
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
