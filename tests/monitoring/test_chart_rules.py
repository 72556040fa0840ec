"""The platform chart's Prometheus carries the repo's rules: the copy in the chart equals
monitoring/rules/bukva.rules.yml, and the rendered ConfigMap passes `promtool check config`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "bukva-platform"
PROMTOOL = shutil.which("promtool")


def test_chart_rules_are_the_repo_rules():
    repo = (ROOT / "monitoring" / "rules" / "bukva.rules.yml").read_bytes()
    assert (CHART / "files" / "bukva.rules.yml").read_bytes() == repo, (
        "cp monitoring/rules/bukva.rules.yml charts/bukva-platform/files/"
    )


@pytest.mark.skipif(PROMTOOL is None, reason="apt-get install prometheus")
@pytest.mark.parametrize("accuracy", [None, "0.93"])
def test_rendered_prometheus_config_and_rules_pass_promtool(tmp_path, accuracy):
    helm = subprocess.run(
        [str(ROOT / "scripts" / "get-helm.sh"), "helm"], capture_output=True, text=True, cwd=ROOT
    )
    if helm.returncode != 0:
        pytest.skip(f"no helm: {helm.stderr.strip()}")
    binary = helm.stdout.strip().splitlines()[-1]
    binary = binary if Path(binary).is_absolute() else str(ROOT / binary)
    args = [binary, "template", "p", str(CHART)]
    if accuracy:
        args += ["--set", f"prometheus.championTestAccuracy={accuracy}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
    [config_map] = [
        d
        for d in yaml.safe_load_all(out.stdout)
        if d and d["kind"] == "ConfigMap" and "prometheus.yml" in d.get("data", {})
    ]
    data = config_map["data"]
    assert set(data) == {"prometheus.yml", "bukva.rules.yml", "champion.rules.yml"}
    config = yaml.safe_load(data["prometheus.yml"])
    config["rule_files"] = [str(tmp_path / Path(p).name) for p in config["rule_files"]]
    # Debian's promtool is built without Kubernetes service discovery: check the rest.
    config["scrape_configs"] = [j for j in config["scrape_configs"] if "static_configs" in j]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    champion = yaml.safe_load(data["champion.rules.yml"])["groups"][0]["rules"]
    assert bool(champion) == bool(accuracy)
