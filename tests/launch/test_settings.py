"""`bukva.settings.Settings` is the only reader of the environment, and every variable it reads
is a row of the README's configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from bukva.settings import ENV_VARS, Settings

ROOT = Path(__file__).resolve().parents[2]
# The Python packages of the project (cluster Job shims under kustomize/ read their Job's own
# variables and are not part of it).
PACKAGES = ("src", "model", "transformer", "frontend", "pipelines", "launch", "bench", "monitoring")
READS_ENV = re.compile(r"\bos\.environ\b|\bgetenv\s*\(|from\s+os\s+import[^\n]*\benviron\b")
# settings reads the environment; a launcher passes it on to the processes it starts;
# pipelines/cpu.py writes the native libraries' kernel variables (ATen, oneDNN, MKL read them
# when torch loads, before any Settings could), and the two kernel benchmarks start stage
# processes with and without them.
ALLOWED = {
    "src/bukva/settings.py",
    "launch/processes.py",
    "pipelines/cpu.py",
    "bench/determinism.py",
    "bench/kernel_cost.py",
}


def _project_modules() -> list[Path]:
    return [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]


def test_only_settings_reads_the_environment() -> None:
    readers = {
        path.relative_to(ROOT).as_posix()
        for path in _project_modules()
        if READS_ENV.search(path.read_text(encoding="utf-8"))
    }
    assert readers - ALLOWED == set(), "read the variable through bukva.settings.Settings"


def test_every_variable_is_in_the_readme_table() -> None:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("|")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
    assert set(ENV_VARS) - documented == set()


def test_settings_keep_secrets_out_of_their_repr() -> None:
    settings = Settings.from_env({"AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_ACCESS_KEY_ID": "k3y"})
    assert settings.aws_secret_access_key == "s3cr3t"
    assert "s3cr3t" not in repr(settings) and "k3y" not in repr(settings)


def test_request_trace_is_off_unless_asked_for() -> None:
    assert Settings.from_env({}).request_trace is False
    assert Settings.from_env({}).kserve_loglevel == "WARNING"
    assert Settings.from_env({"BUKVA_REQUEST_TRACE": "true"}).request_trace is True


def test_servers_get_the_production_log_configuration() -> None:
    """`make serve`, `make up`, `make bench` and the tests start the servers through
    `launch.serve.servers`: WARNING, no trace line per request, unless the settings say so."""
    from launch.serve import Ports, mlflow_ui, servers

    for env, level, trace in (
        ({}, "WARNING", "false"),
        ({"KSERVE_LOGLEVEL": "info", "BUKVA_REQUEST_TRACE": "1"}, "INFO", "true"),
    ):
        for server in servers(Ports(), [], settings=Settings.from_env(env)):
            assert server.env["KSERVE_LOGLEVEL"] == level
            flag = server.cmd.index("--enable_latency_logging")
            assert server.cmd[flag + 1] == trace
    ui = mlflow_ui(5000, Settings.from_env({"BUKVA_HOME": str(ROOT)}))
    assert ui is not None and ui.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
