"""The predictor's runtimes: ONNX Runtime answers as PyTorch does, whatever the network's inputs.

`model.onnx` is written at registration; a folder without it, or with one exported from other
weights, is exported again at load. Small random-weight networks keep the exports quick: the
graph, not the accuracy, is under test.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bukva.contract import GEOMETRY, INPUT, LABEL_LOGITS, ONNX_FILE, ONNX_WEIGHTS_SHA

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def small_model(root: Path, name: str, seed: int, geometry: int, pool: int = 1) -> Path:
    import torch

    from bukva.network import BukvaNet, ModelConfig, save

    torch.manual_seed(seed)
    net = BukvaNet(ModelConfig(width=8, hidden=32, pool=pool, geometry=geometry, case_hidden=8))
    with torch.no_grad():  # non-trivial batch-norm statistics, as a trained model has
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return save(net, root / name)


def feeds(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.random((n, 1, 28, 28), dtype=np.float32)
    return {INPUT: image, GEOMETRY: rng.random((n, 5), dtype=np.float32)}


@pytest.mark.parametrize(
    ("geometry", "pool"), [(5, 3), (5, 1), (0, 1)], ids=["grid-pool", "global-pool", "image-only"]
)
def test_onnx_answers_as_pytorch(tmp_path: Path, geometry: int, pool: int) -> None:
    from model.runtime import TorchNet, export, onnx_net

    folder = small_model(tmp_path, "m", seed=1, geometry=geometry, pool=pool)
    export(folder, folder / ONNX_FILE)
    onnx, torch_net = onnx_net(folder), TorchNet(folder)
    # The linear layers, 1x1 convolutions in training (bukva.network.Linear), export as Gemm.
    ops = [node.op_type for node in pytest.importorskip("onnx").load(folder / ONNX_FILE).graph.node]
    assert ops.count("Conv") == 6, ops  # the body's six 3x3 convolutions only
    assert ops.count("Gemm") == (4 if geometry else 3), ops
    assert set(onnx.input_names) == {INPUT, GEOMETRY}
    for n in (1, 7):  # the batch dimension is dynamic
        got, want = onnx(feeds(n)), torch_net(feeds(n))
        assert set(got) == set(want)
        for name in want:
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5)
    if geometry:  # the geometry input reaches the case head in the exported graph too
        moved = feeds(1) | {GEOMETRY: np.zeros((1, 5), np.float32)}
        assert not np.allclose(onnx(moved)["uppercase_logit"], onnx(feeds(1))["uppercase_logit"])


def test_missing_or_stale_onnx_is_exported_from_the_folders_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bukva.registry import weights_digest
    from model.runtime import TorchNet, export, onnx_net

    folder = small_model(tmp_path, "new", seed=2, geometry=5)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    fresh = onnx_net(folder)  # no model.onnx: exported at load, the folder left as it was
    assert not (folder / ONNX_FILE).exists()
    assert fresh.metadata[ONNX_WEIGHTS_SHA] == weights_digest(folder)
    # The export is removed once the session holds it. (torch's exporter may leave its own
    # compile cache here, `torchinductor_<user>`, the first time a process exports: not ours.)
    assert [p.name for p in scratch.iterdir() if p.name.startswith("bukva-")] == []
    assert fresh(feeds(2))[LABEL_LOGITS].shape == (2, 43)

    other = small_model(tmp_path, "old", seed=3, geometry=5)
    export(other, other / ONNX_FILE)
    shutil.copy(other / ONNX_FILE, folder / ONNX_FILE)  # a model.onnx of other weights
    served = onnx_net(folder)
    assert served.metadata[ONNX_WEIGHTS_SHA] == weights_digest(folder)
    np.testing.assert_allclose(
        served(feeds(3))[LABEL_LOGITS], TorchNet(folder)(feeds(3))[LABEL_LOGITS], atol=1e-5
    )


def test_a_model_saved_before_the_pool_setting_loads_as_global_pool(tmp_path: Path) -> None:
    """config.json files written before `pool` existed lack the key: they were one global
    average, and load so (with their weights: a 3x3 grid would not fit them)."""
    import json

    from bukva.network import CONFIG_FILE, load

    folder = small_model(tmp_path, "old", seed=4, geometry=5, pool=1)
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config.pop("pool") == 1
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    assert load(folder).config.pool == 1

    grid = small_model(tmp_path, "grid", seed=4, geometry=5, pool=3)
    assert load(grid).config.pool == 3
