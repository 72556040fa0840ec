"""Training runs no MKL routine: MKL picks its code by the CPU's vendor (even under
`MKL_CBWR=COMPATIBLE,STRICT` an AMD EPYC and an Intel Xeon trained other weights), so the
network's linear layers run as 1x1 convolutions on oneDNN (`bukva.network.Linear`) and the
augmentation builds its affine grid elementwise (`pipelines.augment.affine_grid`).
docs/pipeline.md, "The same model on every machine"."""

import json
import os
import re
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from bukva.network import BukvaNet, Linear, ModelConfig  # noqa: E402
from pipelines.augment import affine_grid  # noqa: E402

MKL_CALL = re.compile(r"MKL_VERBOSE\s+[A-Za-z_0-9]+\(")


def _fingerprint_process(cores: set[int] | None = None, **env: str) -> subprocess.CompletedProcess:
    """`python -m pipelines.kernels --fingerprint` in a fresh process (held to `cores`)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.kernels", "--fingerprint"],
        capture_output=True, text=True, timeout=300, check=True, env={**os.environ, **env},
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
    )  # fmt: skip


def _shown(done: subprocess.CompletedProcess) -> dict:
    """The JSON it printed (MKL's log, when on, comes before it)."""
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_training_steps_call_no_mkl_routine():
    """`pipelines.kernels --fingerprint` (training steps with augmentation, every kernel
    training uses) with MKL's call log on: not one MKL call. With torch's own nn.Linear or
    F.affine_grid it logs SGEMM calls."""
    done = _fingerprint_process(MKL_VERBOSE="1")
    calls = MKL_CALL.findall(done.stdout + done.stderr)
    assert calls == [], f"MKL routines called during training steps: {sorted(set(calls))}"
    assert len(_shown(done)["fingerprint"]) == 16


def test_linear_is_nn_linear_computed_another_way():
    """Same parameters and state_dict keys as nn.Linear, the same products up to rounding,
    any leading shape, and every linear layer of the network is this one."""
    torch.manual_seed(0)
    ours, theirs = Linear(12, 5), torch.nn.Linear(12, 5)
    theirs.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias"]
    for shape in [(7, 12), (2, 3, 12), (0, 12)]:
        x = torch.randn(*shape)
        assert torch.allclose(ours(x), theirs(x), atol=1e-5), shape
        assert ours(x).shape == theirs(x).shape
    model = BukvaNet(ModelConfig())
    assert all(type(m) is not torch.nn.Linear for m in model.modules())


def test_affine_grid_matches_torch():
    theta = torch.randn(9, 2, 3, generator=torch.Generator().manual_seed(3))
    ours = affine_grid(theta, 28)
    theirs = torch.nn.functional.affine_grid(theta, [9, 1, 28, 28], align_corners=False)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-5)


def _stage_process(code: str, **env: str) -> str:
    """stdout of a fresh process that imports `pipelines` first, as a stage does."""
    done = subprocess.run(
        [sys.executable, "-c", "import pipelines\n" + code],
        capture_output=True, text=True, timeout=120, check=True, env={**os.environ, **env},
    )  # fmt: skip
    return done.stdout.strip()


NUMPY_DIGEST = (
    "import hashlib; from pipelines.kernels import numpy_arithmetic; "
    "print(hashlib.sha256(numpy_arithmetic()).hexdigest())"
)
NUMPY_KERNELS = (
    "import json; from pipelines.cpu import numpy_kernels; print(json.dumps(numpy_kernels()))"
)
# What an AVX2-only x86-64 machine runs by itself: numpy without its AVX-512 loops, OpenBLAS's
# Haswell kernels (its pick on AVX2-only Intel and AMD CPUs), here on one thread.
AVX2_MACHINE = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
}


def test_stage_processes_run_numpy_on_its_avx2_kernels():
    """numpy's float64 exp and log give other last bits on its AVX-512 loops than on its AVX2
    ones, and OpenBLAS's products move with its kernels and thread count: a stage process
    computes what an AVX2-only machine computes, and on a machine with AVX-512 that is not
    what numpy would pick by itself."""
    shown = json.loads(_stage_process(NUMPY_KERNELS))
    assert "X86_V4" not in shown["numpy_simd"]
    assert shown["openblas"] in ("Haswell", None)  # None: threadpoolctl not installed
    pinned = _stage_process(NUMPY_DIGEST)
    assert pinned == _stage_process(NUMPY_DIGEST, BUKVA_CPU_KERNELS="native", **AVX2_MACHINE)
    native = json.loads(_stage_process(NUMPY_KERNELS, BUKVA_CPU_KERNELS="native"))
    if "X86_V4" in native["numpy_simd"]:  # this machine has AVX-512: the pin changes the bits
        assert pinned != _stage_process(NUMPY_DIGEST, BUKVA_CPU_KERNELS="native")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_training_threads_give_the_same_sums_on_one_core():
    """Training runs on params.yaml's fixed thread count (2), and the split of the backward
    pass's sums depends on that count, not on the cores the process may use: the fingerprint's
    training steps give the same bits held to one core, and with OpenMP told it may shrink
    teams (the caps forbid it). docs/pipeline.md, "Two threads"."""
    from pipelines.common import load_params

    threads = load_params("train")["threads"]
    free = _shown(_fingerprint_process())
    assert free["fingerprint_threads"] == threads > 1
    one_core = _shown(_fingerprint_process({min(os.sched_getaffinity(0))}, OMP_DYNAMIC="true"))
    assert one_core["env"]["OMP_DYNAMIC"] == "FALSE"
    assert one_core["fingerprint"] == free["fingerprint"]
