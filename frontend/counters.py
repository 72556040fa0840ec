"""Domain counters of the app, ready for a Prometheus `/metrics` endpoint.

The counters live in their own registry (one per process, made by `resources.metrics()`), so a
Streamlit module reload never registers them twice. Expose them with
`prometheus_client.start_http_server(port, registry=metrics.registry)` or
`prometheus_client.generate_latest(metrics.registry)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, start_http_server

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrontendMetrics:
    """What the app counts: drawings sent for prediction, and the feedback people gave."""

    registry: CollectorRegistry
    drawings: Counter
    predictions_failed: Counter
    feedback: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> FrontendMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            drawings=Counter(
                "bukva_frontend_drawings_total",
                "Drawings the app sent to the inference service",
                registry=registry,
            ),
            predictions_failed=Counter(
                "bukva_frontend_prediction_errors_total",
                "Drawings the inference service could not answer, by reason",
                ["reason"],
                registry=registry,
            ),
            feedback=Counter(
                "bukva_frontend_feedback_total",
                "Feedback given; agrees=true when the person confirmed the model's character, "
                "delivery=stored|queued",
                ["agrees", "delivery"],
                registry=registry,
            ),
        )

    def record_feedback(self, agrees: bool, stored: bool) -> None:
        self.feedback.labels(
            agrees=str(agrees).lower(), delivery="stored" if stored else "queued"
        ).inc()


def serve(registry: CollectorRegistry, env: dict[str, str] | None = None) -> int | None:
    """Serve `registry` on /metrics at 0.0.0.0:BUKVA_METRICS_PORT (default 9102; 0 turns it
    off), in a daemon thread. Returns the port, or None when off or the port is taken (a second
    app on one machine): the app keeps working, only without its own metrics endpoint."""
    from bukva.settings import Settings

    settings = Settings.from_env(env)
    port = settings.bukva_metrics_port
    if port == 0:
        return None
    try:
        start_http_server(port, addr=settings.bukva_metrics_address, registry=registry)
    except OSError as exc:
        log.warning("metrics endpoint not started on port %s: %s", port, exc)
        return None
    return port
