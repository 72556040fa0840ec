"""Process-wide resources of the app, made once and shared by every browser session.

`st.cache_resource` keeps one HTTP connection pool to the transformer, one feedback outbox
(with its retry thread) and one metrics registry per Streamlit process. Nothing is created
at import time; the first page that needs a resource creates it.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import streamlit as st

from bukva.settings import Settings
from bukva.storage import FeedbackOutbox, ObjectStore, open_store
from frontend.client import InferenceClient
from frontend.counters import FrontendMetrics, serve

RETRY_INTERVAL_S = 5.0


@st.cache_resource
def settings() -> Settings:
    """The environment, read once per process."""
    return Settings.from_env()


@st.cache_resource
def inference_client() -> InferenceClient:
    """The transformer client (a pooled keep-alive connection: no handshake per stroke)."""
    return InferenceClient(settings().bukva_inference_url)


@st.cache_resource
def feedback_store() -> ObjectStore:
    """The store at BUKVA_FEEDBACK_URI (relative folders are under BUKVA_HOME)."""
    config = settings()
    return open_store(config.bukva_feedback_uri, config.aws_endpoint_url, base=config.home)


def outbox_dir(config: Settings) -> Path:
    """The outbox folder: BUKVA_FEEDBACK_OUTBOX (relative to BUKVA_HOME); a folder of that
    name in the system temp folder when it cannot be written (a container with a read-only
    root file system mounts a writable volume at /tmp)."""
    folder = config.home / config.bukva_feedback_outbox  # an absolute setting stays as it is
    fallback = Path(tempfile.gettempdir()) / folder.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return fallback
    return folder if os.access(folder, os.W_OK) else fallback


@st.cache_resource
def outbox() -> FeedbackOutbox:
    """The feedback outbox, with a daemon thread that delivers queued records once the store
    is back, even when nobody is using the app."""
    config = settings()
    box = FeedbackOutbox(
        feedback_store(), outbox_dir(config), max_pending=config.bukva_feedback_outbox_max
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=box.retry_forever, args=(stop, RETRY_INTERVAL_S), name="feedback-outbox", daemon=True
    )
    thread.start()
    return box


@st.cache_resource
def metrics() -> FrontendMetrics:
    """The app's Prometheus counters (their own registry), served on /metrics at
    BUKVA_METRICS_PORT once per process."""
    counters = FrontendMetrics.create()
    serve(counters.registry)
    return counters


@st.cache_data(ttl=60, show_spinner=False)
def served_model_version(base_url: str) -> str:
    """The model version the inference service reports (cached for a minute, per URL)."""
    return inference_client().model_version()
