"""`make prometheus`: a local Prometheus scraping the local services, in the foreground.

`python -m launch.prometheus` writes run/prometheus/prometheus.yml and the champion's rules
(`monitoring.prometheus_config` renders both) and runs Debian's `prometheus` on 127.0.0.1:9090 with
the rules in monitoring/rules/. `make up` starts the same process through `prometheus`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from bukva.settings import Settings, SettingsError
from launch.processes import Process
from monitoring.prometheus_config import Targets, champion_accuracy, write_config

INSTALL_HINT = "Prometheus needs Debian's prometheus: apt-get install -y prometheus"


def command(config: Path, data: Path, listen: str, binary: str = "prometheus") -> list[str]:
    """The prometheus command line (lifecycle API on, so `curl -X POST .../-/reload` works)."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=7d",
    ]


def prepare(home: Path, targets: Targets, listen: str, out: Path) -> list[str]:
    """Write the config for `targets` into `out`; return the command that serves it."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    config = write_config(out, targets, champion_accuracy(home))
    return command(config, out / "data", listen, binary)


def prometheus(home: Path, ports: object, listen: str, out: Path) -> Process:
    """Prometheus scraping the servers on `ports` (a `launch.serve.Ports`) and the app's
    metrics port, as a `Process` ready when /-/ready answers."""
    settings = Settings.from_env()
    targets = Targets(
        predictor=f"127.0.0.1:{ports.predictor_http}",
        transformer=f"127.0.0.1:{ports.transformer_http}",
        frontend=f"127.0.0.1:{settings.bukva_metrics_port}",
    )
    cmd = prepare(home, targets, listen, out)
    return Process("prometheus", cmd, f"http://{listen}/-/ready", None, out / "prometheus.log")


def main(argv: list[str] | None = None) -> None:
    """Render the config for the local services and exec Prometheus in the foreground."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"prometheus: {exc}")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9090")
    parser.add_argument("--out", type=Path, default=settings.home / "run" / "prometheus")
    parser.add_argument("--predictor", default=Targets.predictor)
    parser.add_argument("--transformer", default=Targets.transformer)
    parser.add_argument("--frontend", default=Targets.frontend)
    args = parser.parse_args(argv)
    targets = Targets(args.predictor, args.transformer, args.frontend)
    try:
        cmd = prepare(settings.home, targets, args.listen, args.out)
    except RuntimeError as exc:
        sys.exit(str(exc))
    print(
        f"Prometheus on http://{args.listen} scraping {targets} (config in {args.out})", flush=True
    )
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
