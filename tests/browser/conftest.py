"""Fixtures for the browser tests: the predictor, the transformer, an S3 store, the app, and
Debian's Chromium driven by Playwright.

Everything runs on loopback, started once for the whole browser run and stopped at its end. The
model is the trained one at models/model (or BUKVA_TEST_MODEL) when it exists, else a freshly
initialised network (the page must show an answer either way; only a trained one can be
checked for the right character). With BUKVA_TEST_CHAMPION=1 (`make screenshots` only) the stack
serves the registry champion instead, as `make up` does: the predictor loads
models:/bukva-cnn@champion from MLFLOW_TRACKING_URI (default: the local mlruns/ store), and the
app asks an MLflow server on that store for the champion and shows `make repro`'s metrics. The
normal run does not depend on what was trained locally.

Screenshots and the latency report go to reports/browser/ (ignored by git: tests never write
into the tracked tree; `make screenshots` copies the README's on purpose).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from bukva.registry import CHAMPION_URI
from bukva.settings import Settings
from launch.processes import free_port
from launch.serve import mlflow_ui
from tests.support.s3 import CREDENTIALS as S3_CREDENTIALS
from tests.support.s3 import MotoS3

from .canvas import WS_PROBE
from .servers import ROOT, Process, streamlit_app, v2_server
from .stub_transformer import StubTransformer

if str(ROOT) not in sys.path:  # model/ and frontend/ are top-level packages
    sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("BUKVA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TRAINED_MODEL = Path(os.environ.get("BUKVA_TEST_MODEL", ROOT / "models" / "model"))
# `make screenshots`: serve the registry champion and show its metrics (see the module docstring).
FROM_REGISTRY = os.environ.get("BUKVA_TEST_CHAMPION") == "1"
OUTPUT = ROOT / "reports" / "browser"  # screenshots and latency.json (git-ignored)
PHONE = {"width": 390, "height": 844}
BUCKET = "bukva-feedback"


@dataclass
class Stack:
    """The running app and what is behind it."""

    url: str  # the app
    inference_url: str
    s3: MotoS3
    home: Path  # the app's BUKVA_HOME (its outbox lives there)
    trained: bool  # whether the predictor serves a trained model
    registry: bool = False  # whether it serves the registry champion (BUKVA_TEST_CHAMPION=1)

    def objects(self) -> list[str]:
        """Every key in the feedback bucket."""
        s3 = boto3.client("s3", endpoint_url=self.s3.url, **_boto_credentials())
        return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    def read(self, key: str) -> bytes:
        s3 = boto3.client("s3", endpoint_url=self.s3.url, **_boto_credentials())
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


# The app's settings a benchmark may set for the app it starts (A/B runs of `make latency`);
# everything else BUKVA_* of the caller's stays out.
PASSED_THROUGH = {
    name: os.environ[name] for name in ("BUKVA_ANSWER_PAINT_MS",) if name in os.environ
}


def registry(logs: Path, home: Path) -> tuple[list[Process], dict, dict]:
    """The champion from the local registry, as `make up` serves it: the processes to start
    (an MLflow server when the store is the embedded SQLite one), and the predictor's and the
    app's environment. The app's BUKVA_HOME gets `make repro`'s reports (its metrics, plots)."""
    settings = Settings.from_env()
    metrics = settings.home / "reports" / "metrics.json"
    if not metrics.is_file():
        pytest.fail(f"no {metrics}: train and register a champion first (make repro)")
    shutil.copytree(settings.home / "reports", home / "reports", dirs_exist_ok=True)
    predictor_env = {"BUKVA_MODEL_URI": CHAMPION_URI, "MLFLOW_TRACKING_URI": settings.tracking_uri}
    port = free_port()
    server = mlflow_ui(port, settings)  # the app reads the registry over HTTP only
    if server is None:  # already an http(s) tracking server
        return [], predictor_env, {"MLFLOW_TRACKING_URI": settings.tracking_uri}
    server.log, server.ready_url = logs / "mlflow.log", f"http://127.0.0.1:{port}/health"
    return [server], predictor_env, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (TRAINED_MODEL / "config.json").is_file():
        return TRAINED_MODEL
    from bukva import network

    return network.save(network.BukvaNet(), tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("logs")
    home = tmp_path_factory.mktemp("home")
    if FROM_REGISTRY:
        companions, predictor_env, app_env = registry(logs, home)
        trained = True
    else:
        model_dir = request.getfixturevalue("model_dir")
        companions, app_env = [], {"MLFLOW_TRACKING_URI": ""}
        predictor_env = {"BUKVA_MODEL_URI": str(model_dir)}
        trained = model_dir == TRAINED_MODEL
    s3 = MotoS3()
    s3.start()
    boto3.client("s3", endpoint_url=s3.url, **_boto_credentials()).create_bucket(Bucket=BUCKET)
    processes: list[Process] = []
    try:
        for companion in companions:
            processes.append(companion.start())
        predictor, predictor_url = v2_server("model", logs, [], predictor_env)
        processes.append(predictor.start())
        host = predictor_url.removeprefix("http://")
        transformer, inference_url = v2_server(
            "transformer", logs, ["--predictor_host", host, "--predictor_protocol", "v2"], {}
        )
        processes.append(transformer.start())
        env = (
            S3_CREDENTIALS
            | {
                "BUKVA_HOME": str(home),
                "BUKVA_INFERENCE_URL": inference_url,
                "BUKVA_FEEDBACK_URI": f"s3://{BUCKET}/feedback",
                "AWS_ENDPOINT_URL": s3.url,
            }
            | app_env
            | PASSED_THROUGH
        )
        app, url = streamlit_app(logs, env)
        processes.append(app.start())
        yield Stack(url, inference_url, s3, home, trained, FROM_REGISTRY)
    finally:
        for process in reversed(processes):
            process.stop()
        s3.stop()


def local_app_env(home: Path, inference_url: str) -> dict[str, str]:
    """An app of its own: feedback in a folder under `home`, no registry, no /metrics port."""
    return {
        "BUKVA_HOME": str(home),
        "BUKVA_INFERENCE_URL": inference_url,
        "BUKVA_FEEDBACK_URI": str(home / "feedback"),
        "MLFLOW_TRACKING_URI": "",
        "BUKVA_METRICS_PORT": "0",
    }


@pytest.fixture
def app_without_inference(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The app pointed at a free port where no inference service listens (yet)."""
    port = free_port()
    env = local_app_env(tmp_path, f"http://127.0.0.1:{port}")
    app, url = streamlit_app(tmp_path, env, name="app-no-inference")
    app.start()
    try:
        yield url, port
    finally:
        app.stop()


# Module scope: Playwright's sync API keeps its event loop running in this thread while it is
# open, and any later test on the same process calling asyncio.run() would then fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    # Two busy cores: a first page load can take seconds.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Keep each phase's report on the test item, so the `page` fixture knows of a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _context(browser, phone: bool = False) -> object:
    """A fresh browser profile (a new Streamlit session), desktop or a touch phone."""
    if phone:
        context = browser.new_context(
            viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2, locale="uk-UA"
        )
    else:
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="uk-UA")
    context.add_init_script(WS_PROBE)
    return context


def _page(context, request: pytest.FixtureRequest) -> Iterator[object]:
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot = OUTPUT / "failures" / f"{request.node.name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failed page: {shot}")
    context.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser tab; on failure its screenshot goes to reports/browser/failures/."""
    yield from _page(_context(browser), request)


@pytest.fixture
def phone(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh tab on a 390x844 touch phone."""
    yield from _page(_context(browser, phone=True), request)


@pytest.fixture
def slow_app(tmp_path: Path) -> Iterator[tuple[str, StubTransformer]]:
    """The app in front of a stand-in transformer that takes 1.5 s per answer: every stroke
    drawn within that time is drawn while the app reruns."""
    with StubTransformer(answer=("г", "т", "п"), delay_s=1.5) as stub:
        app, url = streamlit_app(tmp_path, local_app_env(tmp_path, stub.url), name="app-slow")
        app.start()
        try:
            yield url, stub
        finally:
            app.stop()
