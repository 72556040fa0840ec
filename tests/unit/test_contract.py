"""Unit tests: `bukva.contract` agrees with the documented contract and stays standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from bukva import contract, registry, settings
from bukva.alphabet import CLASSES, DIGITS

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def documented(tensor: contract.Tensor, top_k: int | None = None) -> str:
    """How docs/architecture.md writes a tensor: `name` DTYPE `[N,...]` (k for top-k)."""
    dims = ["N", *("k" if d == top_k else str(d) for d in tensor.shape[1:])]
    return f"`{tensor.name}` {tensor.datatype} `[{','.join(dims)}]`"


def test_tensors_are_the_documented_ones():
    for tensor in (*contract.PREDICTOR_INPUTS, *contract.PREDICTOR_OUTPUTS):
        assert documented(tensor) in ARCHITECTURE
    for tensor in contract.transformer_outputs(7):
        assert documented(tensor, top_k=7) in ARCHITECTURE
    assert f"**v2 model name**: `{contract.MODEL_NAME}`" in ARCHITECTURE
    names = f"`{registry.REGISTERED_MODEL}`, alias `{registry.CHAMPION_ALIAS}`"
    assert names in ARCHITECTURE
    assert f"`{contract.WEIGHTS_FILE}` and `{contract.CONFIG_FILE}`" in ARCHITECTURE


def test_shapes_and_counts_fit_the_class_list():
    assert contract.NUM_CLASSES == len(CLASSES) == 43
    assert contract.NUM_DIGITS == 10 and "".join(CLASSES[: contract.NUM_DIGITS]) == DIGITS
    label_logits = contract.PREDICTOR_OUTPUTS[0]
    assert label_logits.name == contract.LABEL_LOGITS
    assert label_logits.shape == (-1, contract.NUM_CLASSES)
    assert contract.PREDICTOR_INPUT.shape == (-1, *contract.INPUT_SHAPE) == (-1, 1, 28, 28)
    assert contract.PREDICTOR_INPUT.metadata() == {
        "name": "image",
        "datatype": "FP32",
        "shape": [-1, 1, 28, 28],
    }
    assert contract.infer_path() == "/v2/models/bukva/infer"


def test_geometry_input_matches_the_core_geometry():
    from bukva.geometry import FEATURES, UNKNOWN

    assert contract.GEOMETRY_INPUT.shape == (-1, contract.GEOMETRY_SIZE) == (-1, len(FEATURES))
    assert contract.PREDICTOR_INPUTS == (contract.PREDICTOR_INPUT, contract.GEOMETRY_INPUT)
    assert UNKNOWN.vector().tolist() == [0.0] * contract.GEOMETRY_SIZE


def test_settings_use_the_contract_names():
    assert (
        settings.Settings().bukva_model_uri == registry.CHAMPION_URI == "models:/bukva-cnn@champion"
    )


def test_contract_imports_only_the_standard_library_and_the_alphabet():
    tree = ast.parse((ROOT / "src" / "bukva" / "contract.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "bukva.alphabet" in names
    assert {n.split(".")[0] for n in names} <= set(sys.stdlib_module_names) | {
        "__future__",
        "bukva",
    }
    assert {n for n in names if n.startswith("bukva")} == {"bukva.alphabet"}
