"""A simulated install of the platform's credentials: the rendered `<release>-secrets` hook
Job's container, run as a local process the way the kubelet runs it (its ConfigMap's files
where its volume mounts them, a service-account token), against a stand-in for the one part
of the Kubernetes API it uses: creating Secrets in a namespace (201, or 409 when the name
exists, as the API answers; 401 without the token; any refusal the test asks for).

Used by conftest.py (the Secrets the other checks resolve), test_object_store_users.py and
test_secrets.py.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "stand-in-service-account-token"
HOOK = "bukva-platform-secrets"


@dataclass
class SecretsApi:
    """`POST /api/v1/namespaces/<ns>/secrets` on loopback, holding what was created."""

    secrets: dict[tuple[str, str], dict] = field(default_factory=dict)  # (ns, name) -> object
    refuse: dict[str, int] = field(default_factory=dict)  # name -> HTTP status to answer
    posts: list[str] = field(default_factory=list)  # names, in the order they were posted

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"kind": "Status", "message": "Unauthorized"})
                if parts[:3] != ["api", "v1", "namespaces"] or parts[4:] != ["secrets"]:
                    return self._answer(404, {"kind": "Status", "message": "not found"})
                name = body["metadata"]["name"]
                api.posts.append(name)
                if name in api.refuse:
                    message = f'secrets "{name}" is forbidden: refused by the test'
                    return self._answer(api.refuse[name], {"kind": "Status", "message": message})
                key = (parts[3], name)
                if key in api.secrets:
                    message = f'secrets "{name}" already exists'
                    return self._answer(409, {"kind": "Status", "message": message})
                api.secrets[key] = body
                return self._answer(201, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def data(self, namespace: str = "bukva") -> dict[str, dict[str, str]]:
        """name -> its keys, decoded, of every Secret in `namespace`."""
        return {
            name: {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
            for (ns, name), obj in self.secrets.items()
            if ns == namespace
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _one(objects: list[dict], kind: str, name: str) -> dict:
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def run_secrets_hook(
    objects: list[dict], api: SecretsApi, workdir: Path, token: str = TOKEN
) -> subprocess.CompletedProcess[str]:
    """The rendered hook Job's container, run once against `api` (a pod of the Job)."""
    job = _one(objects, "Job", HOOK)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == HOOK and pod["automountServiceAccountToken"] is True
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    workdir.mkdir(parents=True, exist_ok=True)
    moved: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        target = workdir / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        moved[mount["mountPath"]] = target
        config = _one(objects, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
        for name, text in config["data"].items():
            (target / name).write_text(text)
    account = workdir / "serviceaccount"
    account.mkdir(exist_ok=True)
    (account / "token").write_text(token)

    def local(arg: str) -> str:
        for path, target in moved.items():
            if arg.startswith(path + "/"):
                return str(target / arg.removeprefix(path + "/"))
        return arg

    command, *args = container["command"]
    assert command == "python", command
    env = {
        "PATH": os.environ["PATH"],
        "KUBERNETES_API_URL": api.url,
        "SERVICE_ACCOUNT_DIR": str(account),
    }
    return subprocess.run(
        [sys.executable, *map(local, args)], env=env, capture_output=True, text=True, timeout=60
    )


def installed_secrets(objects: list[dict], workdir: Path) -> dict[str, dict[str, str]]:
    """The Secrets one install of the rendered platform holds: name -> keys, decoded."""
    api = SecretsApi()
    try:
        done = run_secrets_hook(objects, api, workdir)
        assert done.returncode == 0, done.stdout + done.stderr
        return api.data(_namespace(objects))
    finally:
        api.close()


def _namespace(objects: list[dict]) -> str:
    return json.loads(_one(objects, "ConfigMap", HOOK)["data"]["spec.json"])["namespace"]
