"""The monitoring page: what the servers and the app report to Prometheus, as charts.

Every chart is one or more PromQL queries against Prometheus' HTTP API at
BUKVA_PROMETHEUS_URL (default http://127.0.0.1:9090, what `make prometheus` starts). The
queries use raw metrics, not recording rules, so the page works against any Prometheus that
scrapes the bukva services. The page says so when Prometheus cannot be reached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

DEFAULT_URL = "http://127.0.0.1:9090"
WINDOW = "5m"  # rate window of the time series
TOTALS = "1h"  # window of the totals (confidence, characters, online accuracy)

# name -> PromQL, one dict per chart. Labels of the result series name the lines.
REQUEST_RATE = {"requests/s": f"sum by (job) (rate(request_predict_seconds_count[{WINDOW}]))"}
LATENCY = {
    f"p{int(q * 100)}": f"histogram_quantile({q}, sum by (le) "
    f'(rate(request_predict_seconds_bucket{{job="transformer"}}[{WINDOW}])))'
    for q in (0.5, 0.9, 0.99)
}
ONLINE_ACCURACY = {
    "online accuracy": (
        f'sum(increase(bukva_frontend_feedback_total{{agrees="true"}}[{TOTALS}]))'
        f" / sum(increase(bukva_frontend_feedback_total[{TOTALS}]))"
    ),
    "champion test accuracy": "max(bukva_champion_test_accuracy)",
}
CONFIDENCE = f"sum by (le) (increase(bukva_transformer_top1_probability_bucket[{TOTALS}]))"
CHARACTERS = f"sum by (character) (increase(bukva_transformer_predictions_total[{TOTALS}]))"

RANGE_QUERIES = {"request_rate": REQUEST_RATE, "latency": LATENCY, "accuracy": ONLINE_ACCURACY}
INSTANT_QUERIES = {"confidence": CONFIDENCE, "characters": CHARACTERS}


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer, or answered with an error."""


@dataclass(frozen=True)
class Prometheus:
    """A minimal client of Prometheus' HTTP API (/api/v1/query and /api/v1/query_range)."""

    url: str = DEFAULT_URL
    timeout_s: float = 5.0

    @classmethod
    def from_env(cls) -> Prometheus:
        """The Prometheus at BUKVA_PROMETHEUS_URL."""
        from bukva.settings import Settings

        return cls(Settings.from_env().bukva_prometheus_url.rstrip("/"))

    def _get(self, path: str, params: dict[str, str | float]) -> list[dict]:
        try:
            response = httpx.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PrometheusUnavailable(f"{self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusUnavailable(f"{self.url}: {body.get('error', response.text[:200])}")
        return body["data"]["result"]

    def query(self, expr: str) -> list[dict]:
        """Instant vector: [{'metric': {...}, 'value': [t, 'v']}, ...]."""
        return self._get("/api/v1/query", {"query": expr})

    def query_range(
        self, expr: str, minutes: int = 60, step_s: int = 30, end: float | None = None
    ) -> list[dict]:
        """Range matrix over the last `minutes`: [{'metric': {...}, 'values': [[t, 'v'], ...]}]."""
        end = time.time() if end is None else end
        params = {"query": expr, "start": end - minutes * 60, "end": end, "step": step_s}
        return self._get("/api/v1/query_range", params)


def series_name(name: str, metric: dict[str, str]) -> str:
    """A line's legend: the query's name, plus its labels when it has any."""
    labels = ",".join(f"{v}" for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name} {labels}" if labels else name


def frame(prometheus: Prometheus, queries: dict[str, str], minutes: int):
    """Range queries as one pandas DataFrame: a time index, one column per series."""
    import pandas as pd

    columns = {}
    for name, expr in queries.items():
        for series in prometheus.query_range(expr, minutes=minutes):
            points = {pd.Timestamp(t, unit="s"): float(v) for t, v in series["values"]}
            columns[series_name(name, series["metric"])] = pd.Series(points)
    return pd.DataFrame(columns)


def confidence_histogram(result: list[dict]) -> dict[str, float]:
    """Cumulative `le` buckets as answers per probability band ('0.5-0.6': n, ...)."""
    buckets = sorted(
        (float(s["metric"]["le"]), float(s["value"][1])) for s in result if "le" in s["metric"]
    )
    bands, previous_le, previous_count = {}, 0.0, 0.0
    for le, count in buckets:
        if le == float("inf"):
            continue
        bands[f"{previous_le:g}-{le:g}"] = max(count - previous_count, 0.0)
        previous_le, previous_count = le, count
    return bands


def per_character(result: list[dict]) -> dict[str, float]:
    """Answers per character, most frequent first."""
    counts = {s["metric"].get("character", "?"): float(s["value"][1]) for s in result}
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def render(lang: str) -> None:
    """Draw the page (titles in English and Ukrainian: these are operators' charts)."""
    import pandas as pd
    import streamlit as st

    uk = lang == "uk"
    prometheus = Prometheus.from_env()
    st.header("Моніторинг" if uk else "Monitoring")
    minutes = st.select_slider(
        "Період, хв" if uk else "Window, minutes", [15, 60, 180, 720, 1440], value=60
    )
    try:
        rate = frame(prometheus, REQUEST_RATE, minutes)
        latency = frame(prometheus, LATENCY, minutes)
        accuracy = frame(prometheus, ONLINE_ACCURACY, minutes)
        confidence = confidence_histogram(prometheus.query(CONFIDENCE))
        characters = per_character(prometheus.query(CHARACTERS))
    except PrometheusUnavailable as exc:
        st.warning(
            (f"Prometheus недоступний: {exc}" if uk else f"Prometheus is unreachable: {exc}")
            + " (make prometheus)"
        )
        return
    left, right = st.columns(2)
    with left:
        st.subheader("Запити за секунду" if uk else "Requests per second")
        st.line_chart(rate)
        st.subheader("Впевненість моделі (1 год)" if uk else "Top-1 probability (1 h)")
        st.bar_chart(pd.Series(confidence, name="answers"))
    with right:
        st.subheader("Затримка, с" if uk else "Latency, s (transformer predict)")
        st.line_chart(latency)
        st.subheader("Точність за відгуками" if uk else "Online accuracy (feedback, 1 h)")
        st.line_chart(accuracy)
    st.subheader("Відповіді за символами (1 год)" if uk else "Answers per character (1 h)")
    st.bar_chart(pd.Series(characters, name="answers"))
