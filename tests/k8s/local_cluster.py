"""A local stand-in for the cluster: run rendered containers as processes on loopback.

`Cluster.localize` maps in-cluster `service:port` addresses to loopback ports (and refuses
any it has no stand-in for), `Cluster.env` resolves a container's environment (Secrets from
what the chart's secrets hook Job created: secrets_hook.py), `Cluster.argv` turns its command
and arguments into a local command line (container ports mapped to free local ports,
`python` = this interpreter). Used by test_execution.py and test_training_job.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from k8s_support import ROOT, containers, pod_specs

KIND = ("values-kind.yaml",)
PORT_FLAGS = ("--http_port=", "--grpc_port=", "--port=", "--server.port=")
BIND_FLAGS = ("--host=", "--server.address=")
IN_CLUSTER = re.compile(r"\b(bukva-[a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """Loopback stand-ins for the in-cluster Services, and the rendered objects."""

    objects: list[dict]
    addresses: dict[str, str] = field(default_factory=dict)  # "svc:port" -> "127.0.0.1:p"
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # local port of each stand-in
    procs: list[tuple[str, subprocess.Popen, Path]] = field(default_factory=list)

    def localize(self, text: str) -> str:
        """Replace every in-cluster service:port by its loopback address; fail on unknown."""

        def swap(m: re.Match) -> str:
            key = f"{m[1]}:{m[2]}"
            assert key in self.addresses, f"no loopback stand-in for in-cluster {key}"
            return self.addresses[key]

        return IN_CLUSTER.sub(swap, text)

    def config(self, name: str) -> dict[str, str]:
        """data of a rendered ConfigMap (fails when the manifests make no such ConfigMap)."""
        return dict(find(self.objects, "ConfigMap", name).get("data") or {})

    def secret(self, name: str) -> dict[str, str]:
        """Keys of a generated Secret, decoded."""
        keys = {k: v for (n, k), v in self.secrets.items() if n == name}
        assert keys, f"no Secret {name} made by the install"
        return keys

    def env(self, container: dict) -> dict[str, str]:
        """The container's environment as the kubelet builds it: envFrom first, then env (later
        wins); ConfigMap and Secret references resolved from the rendered objects, in-cluster
        hosts mapped to their loopback stand-ins. A missing optional key is left out."""
        env: dict[str, str] = {}
        for src in container.get("envFrom", []):
            if "configMapRef" in src:
                env |= self.config(src["configMapRef"]["name"])
            else:
                env |= self.secret(src["secretRef"]["name"])
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                continue
            ref = e["valueFrom"]
            if "secretKeyRef" in ref:
                secret = ref["secretKeyRef"]
                env[e["name"]] = self.secret(secret["name"])[secret["key"]]
                continue
            key = ref["configMapKeyRef"]
            data = self.config(key["name"])
            if key["key"] in data:
                env[e["name"]] = data[key["key"]]
            else:
                assert key.get("optional"), f"ConfigMap {key['name']} has no key {key['key']}"
        return {k: self.localize(v) for k, v in env.items()}

    def argv(self, container: dict, env: dict[str, str], ports: dict[int, int]) -> list[str]:
        """command + args with $(VAR) expanded, ports and hosts mapped, python = this one."""
        out = []
        for arg in container.get("command", []) + container.get("args", []):
            arg = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], arg)
            for flag in PORT_FLAGS:
                if arg.startswith(flag):
                    arg = flag + str(ports[int(arg[len(flag) :])])
            for flag in BIND_FLAGS:
                if arg.startswith(flag):
                    arg = flag + "127.0.0.1"
            out.append(self.localize(arg))
        if out[0] == "python":
            out[0] = sys.executable
        elif out[0] in ("streamlit", "mlflow"):
            out[0] = str(Path(sys.executable).with_name(out[0]))
        return out

    def start(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        log = logs / f"{name}.log"
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "BUKVA_"))
        }
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=base | {"HOME": str(logs)} | env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.procs.append((name, proc, log))

    def wait_http(self, name: str, url: str, timeout: float = 120) -> None:
        """Poll `url` until it answers 200; fail with the process log if it dies or times out."""
        proc, log = next((p, lg) for n, p, lg in self.procs if n == name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
            time.sleep(0.5)
        pytest.fail(f"{name}: {url} not ready in {timeout}s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        for _name, proc, _log in reversed(self.procs):
            proc.terminate()
        for _name, proc, _log in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def find(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def container_of(objects: list[dict], owner: str) -> dict:
    return next(containers(p.spec)[0] for p in pod_specs(objects) if p.owner == owner)


def probe_url(container: dict, probe: str, ports: dict[int, int]) -> str:
    get = container[probe]["httpGet"]
    port = get["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
    return f"http://127.0.0.1:{ports[port]}{get['path']}"


REGISTER = """
import sys, mlflow
from mlflow.tracking import MlflowClient
from bukva import network

tracking_uri, workdir = sys.argv[1], sys.argv[2]
folder = network.save(network.BukvaNet(), workdir + "/model")
from model.runtime import export  # the register stage logs model.onnx beside the weights
export(folder, folder / "model.onnx")
mlflow.set_tracking_uri(tracking_uri)
with mlflow.start_run() as run:
    mlflow.log_artifacts(str(folder), "model")
client = MlflowClient(tracking_uri)
client.create_registered_model("bukva-cnn")
run_id = run.info.run_id
version = client.create_model_version("bukva-cnn", f"runs:/{run_id}/model", run_id)
client.set_registered_model_alias("bukva-cnn", "champion", version.version)
print("registered bukva-cnn version", version.version)
"""


def register_champion(tracking_uri: str, workdir: Path) -> None:
    """What the `register` stage leaves behind: bukva-cnn@champion (random weights), logged
    through the MLflow server's artifact proxy into the S3 stand-in."""
    # The experiment is this server's: never one an earlier test left in MLFLOW_EXPERIMENT_ID.
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_EXPERIMENT_ID"}
    out = subprocess.run(
        [sys.executable, "-c", REGISTER, tracking_uri, str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]


def canvas_request() -> bytes:
    """A white vertical stroke on black, as the canvas sends it: UINT8 [1, H, W, 4]."""
    h = w = 64
    data = []
    for y in range(h):
        for x in range(w):
            ink = 28 <= x < 36 and 12 <= y < 52
            data += [255, 255, 255, 255] if ink else [0, 0, 0, 255]
    body = {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, h, w, 4], "data": data}]}
    return json.dumps(body).encode()


def image_workspace(dest: Path) -> Path:
    """/app of the trainer image: what pipelines/Dockerfile COPYs, as a one-commit git repo."""
    from dockerfiles import IMAGES, parse_dockerfile

    df = parse_dockerfile(ROOT / IMAGES["trainer"][0])
    dest.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__")
    for sources, target in zip(df.copies, df.targets, strict=True):
        for src in sources:
            for path in sorted(ROOT.glob(src.rstrip("/"))):
                if path.is_dir():
                    shutil.copytree(path, dest / target, dirs_exist_ok=True, ignore=skip)
                    continue
                out = dest / target / path.name if target.endswith("/") else dest / target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
    git = ["git", "-c", "user.name=bukva", "-c", "user.email=bukva@localhost"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-qm", "image"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest
