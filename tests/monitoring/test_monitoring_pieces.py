"""Fast checks of the monitoring pieces: the app's /metrics endpoint, the page's parsing, the
Prometheus config the Makefile renders."""

from __future__ import annotations

import socket

import httpx
import pytest

from frontend.counters import FrontendMetrics, serve
from frontend.monitoring import Prometheus, PrometheusUnavailable, confidence_histogram
from monitoring.prometheus_config import RULES, Targets, champion_rules, render_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_app_metrics_endpoint_serves_the_counters():
    counters = FrontendMetrics.create()
    port = free_port()
    env = {"BUKVA_METRICS_PORT": str(port), "BUKVA_METRICS_ADDRESS": "127.0.0.1"}
    assert serve(counters.registry, env) == port
    counters.drawings.inc()
    counters.record_feedback(agrees=False, stored=True)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "bukva_frontend_drawings_total 1.0" in text
    assert 'bukva_frontend_feedback_total{agrees="false",delivery="stored"} 1.0' in text


def test_app_metrics_endpoint_off_or_port_taken_does_not_fail():
    registry = FrontendMetrics.create().registry
    assert serve(registry, {"BUKVA_METRICS_PORT": "0"}) is None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"BUKVA_METRICS_PORT": str(port), "BUKVA_METRICS_ADDRESS": "127.0.0.1"}
        assert serve(registry, env) is None


def test_confidence_histogram_turns_cumulative_buckets_into_bands():
    result = [
        {"metric": {"le": le}, "value": [0, str(v)]}
        for le, v in (("0.5", 2), ("0.2", 1), ("1.0", 10), ("+Inf", 10))
    ]
    assert confidence_histogram(result) == {"0-0.2": 1.0, "0.2-0.5": 1.0, "0.5-1": 8.0}


def test_unreachable_prometheus_is_a_clear_error():
    with pytest.raises(PrometheusUnavailable, match=r"127\.0\.0\.1"):
        Prometheus(f"http://127.0.0.1:{free_port()}", timeout_s=1).query("up")


def test_page_says_when_prometheus_is_unreachable(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BUKVA_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")

    def page():
        from frontend import monitoring

        monitoring.render("en")

    app = AppTest.from_function(page, default_timeout=60).run()
    assert not app.exception
    assert any("Prometheus is unreachable" in w.value for w in app.warning)


def test_rendered_config_scrapes_each_service_and_loads_the_rules(tmp_path):
    import yaml

    champion = tmp_path / "champion.rules.yml"
    config = yaml.safe_load(render_config(Targets(), [RULES, champion]))
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {
        "predictor": ["127.0.0.1:8090"],
        "transformer": ["127.0.0.1:8080"],
        "frontend": ["127.0.0.1:9102"],
    }
    assert config["rule_files"] == [str(RULES), str(champion)]
    rule = yaml.safe_load(champion_rules(0.925))["groups"][0]["rules"][0]
    assert rule == {"record": "bukva_champion_test_accuracy", "expr": "vector(0.925000)"}
    assert yaml.safe_load(champion_rules(None))["groups"][0]["rules"] == []


def test_the_champions_accuracy_comes_from_its_registry_tag_else_the_report(
    tmp_path, monkeypatch
) -> None:
    from monitoring.prometheus_config import champion_accuracy
    from tests.support.mlflow_rest import mlflow_rest

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text('{"label_accuracy": 0.5}')
    champion = {"version": "2", "tags": [{"key": "metric.label_accuracy", "value": "0.931"}]}
    with mlflow_rest([champion], {"champion": "2"}) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        assert champion_accuracy(tmp_path) == 0.931
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # no registry: the report
    assert champion_accuracy(tmp_path) == 0.5
