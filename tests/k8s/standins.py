"""Stand-ins for docker, kind, k3d, kubectl and helm, for running the cluster scripts here.

No cluster and no Docker daemon run on the machines these tests run on, so the scripts
(`scripts/cluster-{up,train,down}.sh`) run against stand-ins: one small program, installed on
PATH under each tool's name, that records every call (arguments, and stdin where the script
pipes into the tool) and answers from a script of rules. What is real: bash, make, git, the
scripts themselves, and `kubectl kustomize` (handed to the real kubectl, so the Jobs the
scripts apply are the overlays' real build). What a recorded `helm upgrade` would install is
rendered afterwards with the real `helm template` and the same values (`Run.helm_render`).

A rule: {"tool": "kubectl", "match": <regex searched in the joined arguments>, "stdout": "",
"rc": 0, "times": <uses; absent: unlimited>}. The first rule with uses left answers; no rule:
exit 0, no output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from k8s_support import ROOT, load_docs, tool

TOOLS = ("docker", "kind", "k3d", "kubectl", "helm")

STANDIN = r"""
import json, os, re, subprocess, sys
from pathlib import Path

tool, args = Path(sys.argv[0]).name, sys.argv[1:]
state_path = Path(os.environ["STANDIN_STATE"])
scenario = json.loads(Path(os.environ["STANDIN_SCENARIO"]).read_text())
stdin = None
piped = (["-f", "-"] == args[-2:]) or "/dev/stdin" in args or (tool == "docker" and "-i" in args)
if piped and not sys.stdin.isatty():
    stdin = sys.stdin.read()
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps({"tool": tool, "args": args, "stdin": stdin}) + "\n")
if tool == "kubectl" and "kustomize" in args:  # offline: the real build
    i = args.index("kustomize")
    sys.exit(subprocess.run([scenario["real_kubectl"], *args[i:]]).returncode)
used = json.loads(state_path.read_text()) if state_path.exists() else {}
line = " ".join(args)
for i, rule in enumerate(scenario["rules"]):
    if rule["tool"] != tool or not re.search(rule["match"], line):
        continue
    if "times" in rule and used.get(str(i), 0) >= rule["times"]:
        continue
    used[str(i)] = used.get(str(i), 0) + 1
    state_path.write_text(json.dumps(used))
    sys.stdout.write(rule.get("stdout", ""))
    sys.stderr.write(rule.get("stderr", ""))
    sys.exit(rule.get("rc", 0))
"""


def rule(tool_name: str, match: str, stdout: str = "", rc: int = 0, **kw: object) -> dict:
    return {"tool": tool_name, "match": match, "stdout": stdout, "rc": rc, **kw}


def healthy(tag_message: str = "version=3 promoted=true champion=3") -> list[dict]:
    """Answers of a working machine and a first run: nothing exists yet, every Job completes,
    the train Job reports `tag_message` (what job_state.py writes), and the app's predictor
    rolls out and serves the champion it names."""
    champion = re.search(r"champion=(\d+)", tag_message)[1]
    return [
        rule("docker", r"^inspect -f \{\{\.State\.Running\}\}", rc=1, stderr="No such object"),
        rule("docker", r"^inspect -f \{\{json \.NetworkSettings\.Networks\}\}", '{"bridge":{}}'),
        rule("kind", r"^version", "kind v0.30.0 go1.24.6 linux/amd64\n"),
        rule("kind", r"^get clusters", ""),
        rule("kind", r"^get nodes --name (\S+)", "node-control-plane\n"),
        rule("k3d", r"^version", "k3d version v5.8.3\nk3s version v1.31.5-k3s1 (default)\n"),
        rule("k3d", r"^cluster list", rc=1, stderr="No nodes found for given cluster"),
        rule("kubectl", r"version --client", '{"clientVersion": {"gitVersion": "v1.34.1"}}\n'),
        rule("kubectl", r"get job \S+ -o jsonpath", "Complete "),
        rule(
            "kubectl", r"get pods -l batch.kubernetes.io/job-name=bukva-train", f"\n{tag_message}\n"
        ),
        rule("kubectl", r"get inferenceservice \S+ -o jsonpath", ""),
        rule(
            "kubectl",
            r"get deployment bukva-predictor -o jsonpath",
            f"models:/bukva-cnn/{champion}",
        ),
        rule(
            "kubectl",
            r"get --raw /api/v1/namespaces/\S+/services/bukva-predictor:80/proxy/v2/models/bukva$",
            f'{{"name": "bukva", "versions": ["{champion}"], "platform": "bukva"}}',
        ),
        rule("helm", r"^version", "v3.19.0"),
    ]


def rerun() -> list[dict]:
    """Answers once a first run has made everything: the registry runs on the cluster's
    network, the cluster exists, the app serves version 3."""
    return [
        rule("docker", r"^inspect -f \{\{\.State\.Running\}\}", "true\n"),
        rule("docker", r"^inspect -f \{\{json", '{"bridge":{},"kind":{},"k3d-bukva":{}}'),
        rule("kind", r"^get clusters", "bukva\n"),
        rule("k3d", r"^cluster list", "bukva\n"),
        rule("kubectl", r"get inferenceservice \S+ -o jsonpath", "models:/bukva-cnn/3"),
        *healthy(),
    ]


@dataclass
class Call:
    tool: str
    args: list[str]
    stdin: str | None

    @property
    def line(self) -> str:
        return f"{self.tool} {shlex.join(self.args)}"


@dataclass
class Run:
    """One script run against the stand-ins: exit code, output, and the recorded calls."""

    rc: int
    stdout: str
    stderr: str
    calls: list[Call] = field(default_factory=list)

    def find(self, tool_name: str, pattern: str) -> list[int]:
        """Indices of the calls of `tool_name` whose joined arguments match `pattern`."""
        return [
            i
            for i, c in enumerate(self.calls)
            if c.tool == tool_name and re.search(pattern, " ".join(c.args))
        ]

    def first(self, tool_name: str, pattern: str) -> int:
        found = self.find(tool_name, pattern)
        assert found, f"no {tool_name} call matching {pattern!r}:\n" + self.transcript()
        return found[0]

    def transcript(self) -> str:
        return "\n".join(c.line for c in self.calls)

    def helm_render(self, release: str) -> list[dict]:
        """The objects the last recorded `helm upgrade` of `release` installs: the real
        `helm template` of the same chart with the same values files and --set flags."""
        [*_, i] = self.find("helm", rf"^upgrade (--install )?{re.escape(release)} ")
        args = self.calls[i].args
        chart = next(a for a in args if a.startswith("charts/"))
        keep: list[str] = []
        it = iter(args)
        for a in it:
            if a in ("-f", "-n", "--set", "--set-string"):
                keep += [a, next(it)]
            elif a.startswith(("--set=", "--set-string=")):
                keep.append(a)
            elif a in ("--kube-context", "--timeout", "--version"):
                next(it)
        if "--reuse-values" in args:  # what the release had: the previous upgrade's values
            earlier = [j for j in self.find("helm", rf"^upgrade --install {release} ") if j < i]
            assert earlier, "--reuse-values with no earlier install recorded"
        out = subprocess.run(
            [tool("helm"), "template", release, str(ROOT / chart), *keep],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stderr
        return load_docs(out.stdout)

    def applied(self) -> list[dict]:
        """Objects piped into `kubectl apply -f -`."""
        return [d for c in self.calls if c.stdin and "apply" in c.args for d in load_docs(c.stdin)]


class Machine:
    """A PATH of stand-ins (plus the real tools) and a scenario, in a temporary folder."""

    def __init__(self, folder: Path, tools: tuple[str, ...] = TOOLS) -> None:
        self.folder = folder
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        program = self.bin / "standin.py"
        program.write_text(f"#!{sys.executable}\n{STANDIN}")
        program.chmod(0o755)
        for name in tools:
            (self.bin / name).symlink_to(program)
        self.log = folder / "calls.jsonl"
        self.scenario = folder / "scenario.json"
        self.state = folder / "state.json"

    def run(self, command: list[str], rules: list[dict], env: dict[str, str] | None = None) -> Run:
        """Run `command` (a script or make) with the stand-ins first on PATH."""
        for stale in (self.log, self.state):
            stale.unlink(missing_ok=True)
        self.scenario.write_text(json.dumps({"rules": rules, "real_kubectl": tool("kubectl")}))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("BUKVA_", "IMAGE_"))}
        for name in ("CLUSTER_TOOL", "CLUSTER_NAME", "NAMESPACE", "OVERLAY", "MAKEFLAGS"):
            base.pop(name, None)
        full = (
            base
            | {
                "PATH": f"{self.bin}:{os.environ['PATH']}",
                "HOME": str(self.folder),
                "STANDIN_LOG": str(self.log),
                "STANDIN_SCENARIO": str(self.scenario),
                "STANDIN_STATE": str(self.state),
                "CLUSTER_STATE_DIR": str(self.folder / "cluster-state"),
                "POLL_S": "0",
                "RETRY_S": "0",
            }
            | (env or {})
        )
        out = subprocess.run(
            command,
            cwd=ROOT,
            env=full,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        calls = []
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                c = json.loads(line)
                calls.append(Call(c["tool"], c["args"], c["stdin"]))
        return Run(out.returncode, out.stdout, out.stderr, calls)


def bukva_images(objects: list[dict]) -> set[str]:
    """Every image a bukva container of these objects runs (InferenceService included)."""
    text = yaml.safe_dump_all(objects)
    return set(re.findall(r"image: (\S*bukva/(?:predictor|transformer|frontend|trainer)\S*)", text))
