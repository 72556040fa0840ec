"""State a training Job takes from and leaves for the next one (run by run-stages.sh).

`start`: write the data source into params.yaml (`ingest.source` from INGEST_SOURCE,
`ingest.feedback` from BUKVA_FEEDBACK_URI), so it is a parameter of the Job, not of the image;
then fetch the dvc.lock the previous Job pushed next to the DVC remote, if any.
`finish`: push this Job's dvc.lock there, and, when the Job ran `register`, write what it
decided (`version=N promoted=true|false champion=M`) to the termination log, where
scripts/cluster-train.sh reads it to roll the app onto a promoted version.

Runs in the trainer image (boto3 and PyYAML come with DVC and MLflow); standard library
otherwise. The lock lives at <DVC_REMOTE_URL>/state/dvc.lock: outside DVC's own layout
(files/md5/...), so DVC never mistakes it for cache.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

LOCK = Path("dvc.lock")
PARAMS = Path("params.yaml")
REGISTRATION = Path("reports/registration.json")


def _lock_location() -> tuple[str, str]:
    bucket, _, prefix = os.environ["DVC_REMOTE_URL"].removeprefix("s3://").partition("/")
    return bucket, f"{prefix.strip('/')}/state/{LOCK.name}".lstrip("/")


def set_data_source() -> None:
    """ingest.source and ingest.feedback from the Job's environment (unset: keep the image's)."""
    import yaml

    params = yaml.safe_load(PARAMS.read_text())
    for key, var in (("source", "INGEST_SOURCE"), ("feedback", "BUKVA_FEEDBACK_URI")):
        if var in os.environ:
            params["ingest"][key] = os.environ[var]
    PARAMS.write_text(yaml.safe_dump(params, sort_keys=False))
    print(f"[job] ingest params: {params['ingest']}")


def fetch_lock() -> None:
    import boto3
    from botocore.exceptions import ClientError

    bucket, key = _lock_location()
    try:
        boto3.client("s3").download_file(bucket, key, str(LOCK))
        print(f"[job] dvc.lock from s3://{bucket}/{key}")
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
            raise
        print(f"[job] no s3://{bucket}/{key} yet: the image's dvc.lock")


def push_lock() -> None:
    import boto3

    bucket, key = _lock_location()
    boto3.client("s3").upload_file(str(LOCK), bucket, key)
    print(f"[job] dvc.lock -> s3://{bucket}/{key}")


def report(path: str) -> None:
    """The register stage's decision, one line, as the termination message."""
    if not REGISTRATION.is_file():
        return
    r = json.loads(REGISTRATION.read_text())
    line = f"version={r['version']} promoted={str(r['promoted']).lower()} champion={r['champion']}"
    Path(path).write_text(line + "\n")
    print(f"[job] registration: {line}")


def main(argv: list[str]) -> int:
    if argv == ["start"]:
        set_data_source()
        fetch_lock()
    elif argv == ["finish"]:
        push_lock()
        report(os.environ.get("TERMINATION_LOG", "/dev/termination-log"))
    else:
        print("usage: job_state.py start|finish", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
