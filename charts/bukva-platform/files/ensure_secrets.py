"""Create the platform's generated Secrets that do not exist yet; never change one that does.

The `<release>-secrets` hook Job (templates/secrets.yaml) runs this before every install and
upgrade, and so does a GitOps tool that applies the rendered chart (the Job is part of it), so
the credentials are made once, in the cluster, and no render ever holds or changes them.

Usage: python ensure_secrets.py SPEC.json, where the spec (rendered by the chart) is

    {"namespace": "bukva",
     "secrets": [{"name": "bukva-platform-s3", "labels": {...},
                  "keys": {"AWS_ACCESS_KEY_ID": {"prefix": "bukva", "length": 12,
                                                 "alphabet": "lower"}, ...}}, ...]}

Each Secret is POSTed to the Kubernetes API with fresh random values: 201, created; 409, it
exists (an earlier install made it, or someone brought it) and is kept as it is. Any other
answer fails the Job, naming the Secret and the API's reason. Creating is the only right the
Job's Role grants: it can neither read nor change a Secret.

The API is https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the pod's service
account token and CA; KUBERNETES_API_URL and SERVICE_ACCOUNT_DIR replace them (the tests'
stand-in API).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import string
import sys
import urllib.error
import urllib.request
from pathlib import Path

ALPHABETS = {
    "lower": string.ascii_lowercase + string.digits,
    "alnum": string.ascii_letters + string.digits,
}
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TIMEOUT_S = 30


def value(key: dict) -> str:
    """A fresh random value: the key's prefix, then `length` characters of its alphabet."""
    alphabet = ALPHABETS[key["alphabet"]]
    return key.get("prefix", "") + "".join(secrets.choice(alphabet) for _ in range(key["length"]))


def manifest(secret: dict) -> dict:
    keys = secret["keys"].items()
    data = {k: base64.b64encode(value(spec).encode()).decode() for k, spec in keys}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret["name"], "labels": secret.get("labels", {})},
        "type": "Opaque",
        "data": data,
    }


def api() -> tuple[str, dict[str, str], ssl.SSLContext | None]:
    """The API's base URL, the request headers (the token) and the TLS context (its CA)."""
    account = Path(os.environ.get("SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR))
    headers = {
        "Authorization": f"Bearer {(account / 'token').read_text().strip()}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    url = os.environ.get("KUBERNETES_API_URL")
    if url:
        return url.rstrip("/"), headers, None
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host  # an IPv6 service address
    context = ssl.create_default_context(cafile=str(account / "ca.crt"))
    return f"https://{host}:{port}", headers, context


def reason(error: urllib.error.HTTPError) -> str:
    """The API's message (a Status object), or the body's first 200 characters."""
    body = error.read().decode(errors="replace")
    try:
        return json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        return body[:200] or str(error.reason)


def ensure(spec: dict) -> int:
    base, headers, context = api()
    url = f"{base}/api/v1/namespaces/{spec['namespace']}/secrets"
    failed = 0
    for secret in spec["secrets"]:
        body = json.dumps(manifest(secret)).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context):
                print(f"Secret {secret['name']}: created")
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                print(f"Secret {secret['name']}: exists, kept as it is")
            else:
                print(f"Secret {secret['name']}: HTTP {exc.code}: {reason(exc)}", file=sys.stderr)
                failed += 1
        except (urllib.error.URLError, OSError) as exc:
            print(f"Secret {secret['name']}: Kubernetes API at {base}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python ensure_secrets.py SPEC.json")
    sys.exit(ensure(json.loads(Path(sys.argv[1]).read_text())))
