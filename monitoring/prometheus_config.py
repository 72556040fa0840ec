"""The local Prometheus's configuration: scrape jobs and the champion's accuracy rule.

`write_config` writes prometheus.yml (one scrape job per local service: predictor,
transformer, frontend) and a rules file holding the champion's test accuracy
(`bukva_champion_test_accuracy`, what the online-accuracy alert compares with). Running the
server is local-run tooling: `launch.prometheus` (`make prometheus`, `make up`). The tests use
`render_config` and `champion_rules` with their own ports and folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "monitoring" / "rules" / "bukva.rules.yml"
CHAMPION_RULES = "champion.rules.yml"
ACCURACY_METRIC = "label_accuracy"


@dataclass(frozen=True)
class Targets:
    """host:port of each service's /metrics (defaults: the ports of `make serve` and the app)."""

    predictor: str = "127.0.0.1:8090"
    transformer: str = "127.0.0.1:8080"
    frontend: str = "127.0.0.1:9102"


def render_config(targets: Targets, rule_files: list[Path], scrape_interval: str = "15s") -> str:
    """The prometheus.yml text: one static job per service, named like its `job` label."""
    jobs = []
    for job, target in (
        ("predictor", targets.predictor),
        ("transformer", targets.transformer),
        ("frontend", targets.frontend),
    ):
        jobs.append(f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n")
    rules = "".join(f"  - {json.dumps(str(path))}\n" for path in rule_files)
    return (
        "# Written by monitoring/prometheus_config.py; edit that, not this file.\n"
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "rule_files:\n"
        f"{rules}"
        "scrape_configs:\n" + "".join(jobs)
    )


def champion_rules(accuracy: float | None) -> str:
    """A rules file with one recording rule: the champion's test accuracy as a series.

    Without a known accuracy the group is empty, so the online-accuracy alert stays silent
    rather than comparing with a made-up number.
    """
    head = "# Written by monitoring/prometheus_config.py from the model registry.\ngroups:\n"
    head += "  - name: bukva.champion\n    rules:"
    if accuracy is None:
        return head + " []\n"
    return (
        head + "\n      - record: bukva_champion_test_accuracy\n"
        f"        expr: vector({accuracy:.6f})\n"
    )


def champion_accuracy(home: Path) -> float | None:
    """The champion's test label accuracy: the registry's `champion` version tag, else the
    last evaluation in reports/metrics.json, else None."""
    from bukva import registry
    from bukva.settings import Settings

    uri = Settings.from_env().tracking_uri
    try:
        if registry.is_server(uri):  # one REST request: a dead server costs seconds, not minutes
            champion = registry.version_by_alias(uri)
        else:  # the embedded store, through MLflow's client
            from mlflow.tracking import MlflowClient

            champion = registry.version_by_alias(MlflowClient(uri, registry_uri=uri))
    except Exception:  # no registry (or no mlflow package): the report instead
        champion = None
    if champion is not None and ACCURACY_METRIC in champion.metrics:
        return champion.metrics[ACCURACY_METRIC]
    report = home / "reports" / "metrics.json"
    if report.is_file():
        value = json.loads(report.read_text()).get(ACCURACY_METRIC)
        return float(value) if isinstance(value, int | float) else None
    return None


def write_config(folder: Path, targets: Targets, accuracy: float | None) -> Path:
    """Write prometheus.yml and the champion rules into `folder`; return the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CHAMPION_RULES).write_text(champion_rules(accuracy))
    config = folder / "prometheus.yml"
    config.write_text(render_config(targets, [RULES, folder / CHAMPION_RULES]))
    return config
