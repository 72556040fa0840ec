"""The monitoring stack for real: promtool on the rules, and a Prometheus on loopback scraping
the real predictor, transformer and frontend metrics endpoint while drawings flow.

The servers start as `make serve` starts them (launch.serve.running); the frontend's counters
are the app's own (`FrontendMetrics` served by `frontend.counters.serve`), incremented the way
the drawing page does for each drawing and each piece of feedback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launch.prometheus import command
from monitoring.prometheus_config import RULES, Targets, champion_rules, write_config

ROOT = Path(__file__).resolve().parents[2]
RULE_TESTS = ROOT / "monitoring" / "rules" / "bukva.rules.test.yml"
WAIT_S = 120  # two shared cores: scrapes and rule evaluations can lag

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="apt-get install prometheus")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_promtool
def test_rules_pass_promtool_check(tmp_path):
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    champion = tmp_path / "champion.rules.yml"
    for accuracy in (0.93, None):
        champion.write_text(champion_rules(accuracy))
        result = subprocess.run([PROMTOOL, "check", "rules", str(champion)], capture_output=True)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@needs_promtool
def test_rules_pass_their_unit_tests():
    result = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.fixture(scope="module")
def serving(tmp_path_factory) -> Iterator[object]:
    """Predictor + transformer on free loopback ports, with a small random-weight model."""
    import torch

    from bukva.network import BukvaNet, save
    from launch.serve import Ports, running

    torch.manual_seed(0)
    model_dir = save(BukvaNet(), tmp_path_factory.mktemp("model") / "model")
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    with running(ports, ["--model_dir", str(model_dir)], protocol="v2", quiet=True) as serving:
        yield serving


@pytest.fixture(scope="module")
def frontend_metrics():
    """The app's counters, served on a free port exactly as the app serves them."""
    from frontend.counters import FrontendMetrics, serve

    counters = FrontendMetrics.create()
    port = free_port()
    assert serve(counters.registry, {"BUKVA_METRICS_PORT": str(port)}) == port
    return counters, port


@pytest.fixture(scope="module")
def prometheus(serving, frontend_metrics, tmp_path_factory) -> Iterator[str]:
    """A real Prometheus scraping the three services every second."""
    if PROMETHEUS is None:
        pytest.skip("apt-get install prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    ports = serving.ports
    targets = Targets(
        predictor=f"127.0.0.1:{ports.predictor_http}",
        transformer=f"127.0.0.1:{ports.transformer_http}",
        frontend=f"127.0.0.1:{frontend_metrics[1]}",
    )
    config = write_config(folder, targets, accuracy=0.9)
    config.write_text(config.read_text().replace("15s", "1s"))
    listen = f"127.0.0.1:{free_port()}"
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        command(config, folder / "data", listen, PROMETHEUS), stdout=log, stderr=log
    )
    url = f"http://{listen}"
    try:
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, "ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for(check, what: str) -> None:
    """Poll `check` until it is true; fail naming `what` after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError, IndexError):
            pass
        time.sleep(1)
    pytest.fail(f"Prometheus: {what} not seen within {WAIT_S}s")


def scraped(url: str, expr: str, value: float) -> None:
    """Wait until Prometheus holds `value` for `expr`."""
    from frontend.monitoring import Prometheus

    client = Prometheus(url)
    wait_for(lambda: float(client.query(expr)[0]["value"][1]) == value, f"{expr} == {value}")


def predictor_requests(serving) -> float:
    """How many predict calls the predictor has counted so far (its own /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{serving.ports.predictor_http}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("request_predict_seconds_count")
    )


@pytest.fixture(scope="module")
def warm_up_requests(serving) -> float:
    """Predict calls before any drawing: the transformer's warm-up (`--warm_up`) sends one at
    start-up when the predictor answers in time, none otherwise."""
    return predictor_requests(serving)


@pytest.fixture(scope="module")
def traffic(serving, frontend_metrics, prometheus, raw_data, warm_up_requests) -> int:
    """Drawings through the transformer as the app sends them, with feedback on some.
    Sent in two rounds, the second once Prometheus has scraped the first, so rates and
    increases have two different samples to work on."""
    from frontend.client import InferenceClient

    counters, _ = frontend_metrics
    pngs = [p.read_bytes() for p in sorted((raw_data / "rukopys" / "glyphs").glob("*.png"))[:6]]
    client = InferenceClient(f"http://127.0.0.1:{serving.ports.transformer_http}")
    sent = 0
    try:
        for round_ in range(2):
            for i, png in enumerate(pngs):
                counters.drawings.inc()
                client.predict(png)
                counters.record_feedback(agrees=i % 3 != 0, stored=True)
                sent += 1
            if round_ == 0:
                scraped(prometheus, "sum(bukva_frontend_feedback_total)", sent)
                scraped(prometheus, "sum(bukva_transformer_predictions_total)", sent)
    finally:
        client.close()
    return sent


@pytest.fixture(scope="module")
def bad_requests(serving, traffic) -> int:
    """Requests another client sends the transformer after the app's drawings: not images,
    each rejected with HTTP 400 (the app's counters never see them)."""
    from frontend.client import InferenceClient, InferenceError

    client = InferenceClient(f"http://127.0.0.1:{serving.ports.transformer_http}")
    try:
        for _ in range(3):
            with pytest.raises(InferenceError, match="400"):
                client.predict(b"not an image")
    finally:
        client.close()
    return 3


@pytest.mark.integration
def test_prometheus_scrapes_every_service(prometheus, traffic):
    from frontend.monitoring import Prometheus

    client = Prometheus(prometheus)

    def all_up() -> bool:
        jobs = {s["metric"]["job"]: s["value"][1] for s in client.query("up")}
        return jobs == {"predictor": "1", "transformer": "1", "frontend": "1"}

    wait_for(all_up, "all three targets up")


@pytest.mark.integration
def test_monitoring_page_queries_return_series(prometheus, traffic, warm_up_requests):
    from frontend.monitoring import (
        CHARACTERS,
        CONFIDENCE,
        RANGE_QUERIES,
        Prometheus,
        confidence_histogram,
        per_character,
    )

    client = Prometheus(prometheus)
    for chart, queries in RANGE_QUERIES.items():
        for name, expr in queries.items():
            wait_for(lambda e=expr: client.query_range(e, minutes=5, step_s=1), f"{chart}/{name}")
    # What was scraped is what happened: one answer per drawing, counted by every component
    # (the predictor also answered the transformer's warm-up before the first drawing).
    assert warm_up_requests in (0, 1)
    for expr, count in (
        ("sum(bukva_transformer_predictions_total)", traffic),
        ("sum(bukva_transformer_top1_probability_count)", traffic),
        ('sum(request_predict_seconds_count{job="predictor"})', traffic + warm_up_requests),
        ("sum(bukva_frontend_drawings_total)", traffic),
        ("sum(bukva_frontend_feedback_total)", traffic),
    ):
        scraped(prometheus, expr, count)
    assert per_character(client.query(CHARACTERS))
    bands = confidence_histogram(client.query(CONFIDENCE))
    assert set(bands) >= {"0-0.2", "0.99-1"}
    assert all(value >= 0 for value in bands.values())


@pytest.mark.integration
def test_recording_rules_and_alerts_are_loaded(prometheus, traffic):
    from frontend.monitoring import Prometheus

    client = Prometheus(prometheus)
    for record in ("bukva:requests:rate5m", "bukva:online_accuracy:ratio_1h"):
        wait_for(lambda r=record: client.query(r), record)
    [accuracy] = client.query("bukva_champion_test_accuracy")
    assert float(accuracy["value"][1]) == pytest.approx(0.9)

    def online_accuracy_between_0_and_1() -> bool:
        # a third of the feedback disagreed with the model (NaN until two scrapes saw it)
        online = float(client.query("bukva:online_accuracy:ratio_1h")[0]["value"][1])
        return 0.0 < online < 1.0

    wait_for(online_accuracy_between_0_and_1, "online accuracy strictly between 0 and 1")
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    alerts = {r["name"] for g in rules for r in g["rules"] if r["type"] == "alerting"}
    assert "BukvaOnlineAccuracyBelowChampion" in alerts


@pytest.mark.integration
def test_grafana_dashboard_queries_are_valid_and_return_series(prometheus, traffic):
    import json

    from frontend.monitoring import Prometheus

    client = Prometheus(prometheus)
    dashboard = json.loads((ROOT / "monitoring" / "grafana" / "bukva-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 7
    for expr in exprs:
        client.query(expr)  # raises PrometheusUnavailable on a PromQL error
    for expr in ("bukva:requests:rate5m", "max(bukva_champion_test_accuracy)"):
        wait_for(lambda e=expr: client.query(e), expr)


@pytest.mark.integration
def test_error_ratio_counts_each_request_once(prometheus, traffic, bad_requests):
    """The transformer's KServe timers count what the error-ratio rule assumes: preprocess
    every request it received (the rejected ones too), postprocess every one it answered.
    The app's drawings and the other client's bad requests are each counted once there; the
    app's ratio counts its own drawings, none of which failed."""
    from frontend.monitoring import Prometheus

    client = Prometheus(prometheus)
    for expr, count in (
        ('sum(request_preprocess_seconds_count{job="transformer"})', traffic + bad_requests),
        ('sum(request_postprocess_seconds_count{job="transformer"})', traffic),
        ("sum(bukva_transformer_invalid_input_total)", bad_requests),
        ("sum(bukva_frontend_drawings_total)", traffic),
    ):
        scraped(prometheus, expr, count)

    def ratios() -> dict[str, float]:
        result = client.query("bukva:errors:ratio_rate5m")
        return {s["metric"]["job"]: float(s["value"][1]) for s in result}

    # The rates' windows hold the last round of drawings and the bad requests, so the exact
    # value depends on when Prometheus scraped; only the transformer's requests failed.
    wait_for(lambda: 0.0 < ratios()["transformer"] < 1.0, "the transformer's error ratio")
    wait_for(lambda: ratios()["frontend"] == 0.0, "the app's error ratio")
