"""What the CPU kernel caps cost (pipelines/cpu.py): CPU time of one training step of the
committed network under each setting, each in a fresh process.

    python -m bench.kernel_cost [--rounds 2] [--steps 40]

Settings: `pinned` (the caps), `native` (widest kernels), `oneDNN-only` (only oneDNN capped),
`ATen+MKL` (ATen and MKL capped, oneDNN widest), `pinned-no-oneDNN` (the caps, oneDNN off:
ATen's own convolution). Prints one JSON line per run: ms of process CPU time per step, and a
checksum of the weights after the steps (equal checksums: equal arithmetic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIVE = {"BUKVA_CPU_KERNELS": "native", "OMP_NUM_THREADS": "1"}
SETTINGS = {
    "pinned": {},
    "native": NATIVE,
    "oneDNN-only": NATIVE | {"DNNL_MAX_CPU_ISA": "AVX2"},
    "ATen+MKL": NATIVE
    | {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "COMPATIBLE,STRICT",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    "pinned-no-oneDNN": {"BUKVA_NO_ONEDNN": "1"},
}
STEP = """
import json, os, sys, time
import pipelines  # the caps, unless BUKVA_CPU_KERNELS=native
import torch
import torch.nn.functional as F
from bukva.network import BukvaNet
from pipelines.common import load_params
from pipelines.fit import TrainParams

torch.set_num_threads(1)
if os.environ.get("BUKVA_NO_ONEDNN"):
    torch.backends.mkldnn.enabled = False
params = TrainParams.from_dict(load_params("train"))
torch.manual_seed(0)
net = BukvaNet(params.model_config)
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
x, g = torch.rand(128, 1, 28, 28), torch.rand(128, 5)
y = torch.randint(0, 43, (128,))

def step():
    logits, _ = net(x, g)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()

for _ in range(3):
    step()
steps = int(sys.argv[1])
started = time.process_time()
for _ in range(steps):
    step()
cpu = time.process_time() - started
print(json.dumps({
    "ms_per_step_cpu": round(1000 * cpu / steps, 1),
    "aten": torch.backends.cpu.get_cpu_capability(),
    "checksum": float(sum(p.detach().double().sum() for p in net.parameters())),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    keep = ("BUKVA_CPU_KERNELS", "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA")
    keep += ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    base = {k: v for k, v in os.environ.items() if k not in keep}
    base["PYTHONPATH"] = f"{ROOT}{os.pathsep}{ROOT / 'src'}"
    for _ in range(args.rounds):
        for name, extra in SETTINGS.items():
            out = subprocess.run(
                [sys.executable, "-c", STEP, str(args.steps)],
                cwd=ROOT,
                env=base | extra,
                capture_output=True,
                text=True,
                check=True,
            )
            print(json.dumps({"setting": name} | json.loads(out.stdout)), flush=True)


if __name__ == "__main__":
    main()
