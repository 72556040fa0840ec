"""`bukva.settings.Settings` is the only reader of the environment, every variable it reads
is a row of the README's configuration table, and each value is parsed to its field's type
once, there (a bad one is an error naming the variable and the value)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bukva.settings import ENV_VARS, Settings, SettingsError

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
    assert Settings.from_env({}).bukva_request_trace is False
    assert Settings.from_env({}).kserve_loglevel == "WARNING"
    for word, value in (("true", True), ("1", True), (" On ", True), ("no", False), ("0", False)):
        assert Settings.from_env({"BUKVA_REQUEST_TRACE": word}).bukva_request_trace is value


def test_values_have_their_fields_types() -> None:
    settings = Settings.from_env(
        {
            "BUKVA_HOME": "/srv/bukva",
            "BUKVA_METRICS_PORT": "0",
            "BUKVA_FEEDBACK_OUTBOX_MAX": " 5 ",
            "BUKVA_FEEDBACK_PER_MINUTE": "3",
            "BUKVA_TUNE_TRIALS": "7",
            "BUKVA_TUNE_MINUTES": "1.5",
            "BUKVA_FEEDBACK_OUTBOX": "/var/outbox",
            "BUKVA_DATA_CACHE": "~/downloads",
        }
    )
    assert settings.home == settings.bukva_home == Path("/srv/bukva")
    assert settings.bukva_metrics_port == 0 and settings.bukva_feedback_outbox_max == 5
    assert settings.bukva_feedback_per_minute == 3 and settings.bukva_tune_trials == 7
    assert settings.bukva_tune_minutes == 1.5
    assert settings.bukva_feedback_outbox == Path("/var/outbox")
    assert settings.bukva_data_cache == Path.home() / "downloads"


def test_unset_or_empty_means_the_default() -> None:
    empty = Settings.from_env(dict.fromkeys(ENV_VARS, ""))
    defaults = Settings.from_env({})
    assert empty == defaults
    assert defaults.bukva_metrics_port == 9102 and defaults.bukva_feedback_per_minute == 20
    assert defaults.bukva_feedback_outbox_max == 1000 and defaults.bukva_tune_epochs == 4
    assert defaults.bukva_tune_minutes is None  # no time limit
    assert defaults.bukva_feedback_outbox == Path("feedback-outbox")
    assert defaults.bukva_data_cache == Path.home() / ".cache" / "bukva"
    assert defaults.bukva_inference_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("BUKVA_METRICS_PORT", "abc", "not a whole number"),
        ("BUKVA_METRICS_PORT", "70000", "must be between 0 and 65535"),
        ("BUKVA_METRICS_PORT", "9102.5", "not a whole number"),
        ("BUKVA_FEEDBACK_OUTBOX_MAX", "0", "must be at least 1"),
        ("BUKVA_FEEDBACK_PER_MINUTE", "-3", "must be at least 1"),
        ("BUKVA_TUNE_MINUTES", "soon", "not a number"),
        ("BUKVA_TUNE_MINUTES", "nan", "not a number"),
        ("BUKVA_TUNE_MINUTES", "-1", "must be at least 0"),
        ("BUKVA_REQUEST_TRACE", "maybe", "not true or false"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(name: str, value: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name}={value!r}: {why}")


def test_a_stage_says_which_setting_is_bad_without_a_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipelines.common import run_cli

    with pytest.raises(SystemExit) as stopped:
        run_cli("tune", lambda: Settings.from_env({"BUKVA_TUNE_TRIALS": "ten"}))
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err == "tune: error: BUKVA_TUNE_TRIALS='ten': not a whole number\n"


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
