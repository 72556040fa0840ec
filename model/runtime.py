"""How the predictor runs the network: ONNX Runtime by default, eager PyTorch on request.

ONNX Runtime runs `model.onnx`, which registration writes beside the safetensors
(`pipelines.register`, `bukva.network.export_onnx`). At batch 1 it takes about 0.5 ms of CPU
where TorchScript took 0.9 ms and eager PyTorch 1.8 ms, with logits equal to eager's within
1e-6, and it needs no torch: the predictor image can leave torch out. The file carries the
sha256 of the weights it was exported from; a folder without it, or with one exported from
other weights (a retrained `models/model`), is exported again at load into a temporary folder,
which needs torch and onnxscript.

Both runtimes take {input name: float32 array} and return {output name: float32 array}, names
from `bukva.contract`, so a network with more inputs (the drawing's geometry) needs no change
here. torch is imported only by the torch runtime and the export.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bukva.contract import ONNX_FILE, ONNX_WEIGHTS_SHA, PREDICTOR_INPUTS, PREDICTOR_OUTPUTS
from bukva.registry import weights_digest

RUNTIMES = ("onnx", "torch")

Feeds = dict[str, np.ndarray]


class Runtime(Protocol):
    """A loaded network: the contract inputs it takes, and one forward pass."""

    input_names: tuple[str, ...]

    def __call__(self, feeds: Feeds) -> Feeds: ...


class ExportUnavailable(RuntimeError):
    """The folder needs an ONNX export, and this installation cannot make one."""


def _torch_parts() -> tuple[Any, Any]:
    """torch and `bukva.network`: optional here (the predictor image has neither)."""
    try:
        import torch

        from bukva import network
    except ImportError as exc:
        raise ExportUnavailable(
            f"this needs torch and the `torch` extra ({exc.name} is missing)"
        ) from None
    return torch, network


class OnnxNet:
    """An ONNX Runtime session on one thread: requests, not one tiny pass, give concurrency."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, feeds: Feeds) -> Feeds:
        values = self.session.run(self.output_names, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, values, strict=True))


class TorchNet:
    """The network in eager PyTorch under `torch.inference_mode()` (debugging, comparisons)."""

    def __init__(self, model_dir: Path, threads: int = 1):
        import inspect

        torch, network = _torch_parts()
        torch.set_num_threads(threads)
        self.torch, self.net = torch, network.load(model_dir)
        taken = len(inspect.signature(self.net.forward).parameters)
        self.input_names = tuple(t.name for t in PREDICTOR_INPUTS[:taken])

    def __call__(self, feeds: Feeds) -> Feeds:
        with self.torch.inference_mode():
            outputs = self.net(*(self.torch.from_numpy(feeds[n]) for n in self.input_names))
        return {t.name: o.numpy() for t, o in zip(PREDICTOR_OUTPUTS, outputs, strict=True)}


def export(model_dir: Path, target: Path) -> Path:
    """Export the folder's network to `target` as ONNX, tagged with its weights' sha256."""
    _torch, network = _torch_parts()
    return network.export_onnx(
        network.load(model_dir), target, {ONNX_WEIGHTS_SHA: weights_digest(model_dir)}
    )


def onnx_net(model_dir: Path, threads: int = 1) -> OnnxNet:
    """The folder's `model.onnx` when it was exported from the folder's weights; otherwise
    a fresh export in a temporary folder (the model folder may be read-only, as /mnt/models),
    removed once the session has loaded it."""
    path = model_dir / ONNX_FILE
    if path.is_file():
        net = OnnxNet(path, threads)
        if net.metadata.get(ONNX_WEIGHTS_SHA) == weights_digest(model_dir):
            return net
        reason = f"{path} was exported from other weights"
    else:
        reason = f"{model_dir} has no {ONNX_FILE}"
    logging.getLogger("kserve").warning("%s; exporting the network to ONNX now", reason)
    # The session holds the graph in memory once made: the exported file is removed after.
    with tempfile.TemporaryDirectory(prefix="bukva-onnx-") as work:
        try:
            fresh = export(model_dir, Path(work) / ONNX_FILE)
        except (ExportUnavailable, ImportError) as exc:  # the torch-free image; no onnxscript
            raise ExportUnavailable(
                f"{reason}, and exporting one here fails ({exc}): register the model again "
                "(`make register` writes model.onnx)"
            ) from None
        return OnnxNet(fresh, threads)


def load_runtime(kind: str, model_dir: Path, threads: int = 1) -> Runtime:
    """The network of `model_dir` in the runtime `kind` ("onnx" or "torch")."""
    if kind == "onnx":
        return onnx_net(model_dir, threads)
    if kind == "torch":
        return TorchNet(model_dir, threads)
    raise ValueError(f"unknown runtime {kind!r}; use one of {RUNTIMES}")
