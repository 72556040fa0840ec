"""The frontend's tests import the top-level `frontend` package (the app), so the checkout's
root goes on sys.path, as for the serving tests; `frontend` then resolves to the app, never to
this test folder (which is no package)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The app's environment for a headless run (AppTest): everything under `tmp_path`,
    feedback in a folder there, no inference service, no registry, no /metrics port."""
    import streamlit as st

    monkeypatch.setenv("BUKVA_HOME", str(tmp_path))
    monkeypatch.setenv("BUKVA_INFERENCE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("BUKVA_FEEDBACK_URI", str(tmp_path / "feedback"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.setenv("BUKVA_METRICS_PORT", "0")
    st.cache_resource.clear()  # the app's settings and clients are per process: start afresh
    st.cache_data.clear()
    return tmp_path
