"""Pinned CPU kernels: the same commit trains the same weights on every x86-64 machine with AVX2.

PyTorch picks its kernels by the CPU it runs on: ATen's vectorised loops (sums, softmax, batch
norm, the optimiser) for AVX-512 when the CPU has it, oneDNN's convolutions likewise, MKL's
matrix products by its own dispatch. Wider vectors add floating-point numbers in another order,
so a machine with AVX-512 and one with AVX2 only train different weights from the same data and
seed, and the difference grows over thousands of steps. `pin()` caps every one of them at AVX2
(present on every x86-64 CPU since 2013-2015) and fixes the threads, before torch is imported:

- `ATEN_CPU_CAPABILITY=avx2`: ATen's CPU kernels;
- `DNNL_MAX_CPU_ISA=AVX2` (and its newer name `ONEDNN_MAX_CPU_ISA`): oneDNN's JIT kernels;
- `MKL_CBWR=COMPATIBLE,STRICT` (conditional numerical reproducibility): MKL's BLAS (the
  linear layers' matrix products) on its one code path that Intel documents as the same on
  Intel and non-Intel CPUs. The `AVX2` branch is honoured on Intel CPUs only; elsewhere MKL
  falls back to its automatic dispatch without a word, which is how an Intel Xeon trained
  other weights than two AMD EPYCs that agreed with each other (docs/pipeline.md). Even
  `COMPATIBLE` did not give an AMD EPYC the Intel Xeon's arithmetic, so training now calls no
  MKL routine at all (`bukva.network.Linear`, `pipelines.augment.affine_grid`,
  tests/unit/test_kernels.py); the cap stays for anything else that reaches MKL.
  `MKL_ENABLE_INSTRUCTIONS=AVX2` caps MKL's other functions;
- `OMP_NUM_THREADS=1`, `MKL_NUM_THREADS=1`: one thread by default (a parallel reduction's order
  depends on the number of threads); `fit` then sets the torch threads params.yaml fixes
  (`torch.set_num_threads(params.threads)`: 2 for pretrain and train). A fixed count gives the
  same sums on any number of cores: oneDNN and ATen split work by the thread count and the
  shapes, never by the cores or caches (2 threads on 1 core: the same weights, docs/pipeline.md);
- `OMP_DYNAMIC=FALSE`: OpenMP may not shrink a team below the count asked for (GNU OpenMP's
  default; an exported `OMP_DYNAMIC=true` would let the machine's load choose the split);
- `NPY_DISABLE_CPU_FEATURES`: numpy's own dispatch stops at AVX2 (`X86_V3`). Its AVX-512
  loops (`X86_V4`) give other last bits than its AVX2 ones for float64 `exp` and `log`
  (measured here with numpy 2.4: 100000 values, other bytes), which the drawing stages and
  evaluate call. The names are numpy 2.4's dispatch targets and the older AVX-512 ones;
  numpy ignores names it does not know;
- `OPENBLAS_CORETYPE=Haswell`, `OPENBLAS_NUM_THREADS=1`: numpy's OpenBLAS (its `@`) on its
  AVX2 kernels, the ones an AVX2-only Intel or AMD CPU picks itself, on one thread.

The one place: `pipelines/__init__.py` calls `pin()`, so every stage (`python -m pipelines.X`,
as dvc.yaml runs them), `make tune` and anything else that imports the package before torch
gets the caps. `BUKVA_CPU_KERNELS=native` turns them off (to measure what they cost or what
differs without them). arm64 has none of these instruction sets: its NEON/SVE kernels add in
yet another order, so an arm64 machine trains other weights; the caps hold on x86-64 only.

    python -m pipelines.kernels   # what is in effect in a fresh process (JSON)
"""

from __future__ import annotations

import os
import platform

OPT_OUT = "BUKVA_CPU_KERNELS"  # "native": let the libraries pick the widest kernels
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE,STRICT",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OMP_DYNAMIC": "FALSE",
    "NPY_DISABLE_CPU_FEATURES": (
        "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL"
    ),
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
}


def pinned() -> bool:
    """Whether the caps apply in this process (not opted out, x86-64)."""
    native = os.environ.get(OPT_OUT, "pinned").strip().lower() == "native"
    return not native and platform.machine().lower() in ("x86_64", "amd64")


def pin() -> bool:
    """Set the caps in the environment (overriding what was there) unless opted out or not
    x86-64. Only effective before torch is first imported; returns whether they were set."""
    if not pinned():
        return False
    os.environ.update(PINNED)
    return True


def numpy_kernels() -> dict:
    """numpy's SIMD dispatch targets in effect and its OpenBLAS kernels (None: not known)."""
    import numpy as np
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    openblas = None
    try:  # threadpoolctl (in the lock through scikit-learn) names OpenBLAS's kernels
        from threadpoolctl import threadpool_info

        found = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
        openblas = found[0].get("architecture") if found else None
    except ImportError:
        pass
    return {
        "numpy": np.__version__,
        "numpy_simd": [t for t in __cpu_dispatch__ if __cpu_features__.get(t)],
        "openblas": openblas,
    }


def describe() -> dict:
    """What this process runs with: the kernel caps, ATen's capability, torch's threads and
    numpy's kernels."""
    import torch

    return {
        "machine": platform.machine(),
        "pinned": pinned() and all(os.environ.get(k) == v for k, v in PINNED.items()),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **numpy_kernels(),
        "env": {k: os.environ.get(k) for k in PINNED},
    }


def summary(threads: int | None = None) -> str:
    """One line for a stage's log; `threads`: the torch threads the stage will set (params.yaml),
    else the process's now."""
    d = describe()
    what = "pinned" if d["pinned"] else "native (not pinned)"
    return f"CPU kernels {what}: ATen {d['aten_capability']}, {threads or d['threads']} thread(s)"
