"""State a training Job takes from and leaves for the next one (run by run-stages.sh).

`start`: write the data source into params.yaml (`ingest.source` from INGEST_SOURCE,
`ingest.feedback` from BUKVA_FEEDBACK_URI), so it is a parameter of the Job, not of the image;
then fetch the dvc.lock the previous Job pushed next to the DVC remote, if any.
`redo` (after `dvc repro`): the stages to run again, forced, so that a Job whose DVC_STAGES
include `register` has a verdict to report; empty when it has one (see below).
`finish`: push this Job's dvc.lock there and, for a Job that includes `register`, write the
verdict (`version=N promoted=true|false champion=M`) to the termination log, where
scripts/cluster-lib.sh reads it to roll the app onto the champion.

The verdict. `reports/registration.json` (what `register` decided) is `cache: false`, so it
never travels through the remote: when the model and its metrics are unchanged, `dvc repro
--pull` skips `register` and a fresh pod has no registration. So every Job that ran
`register` keeps its verdict at <DVC_REMOTE_URL>/state/registration.json, stamped with the
inputs `register` saw (its dependencies' hashes in dvc.lock). A later Job that skipped
`register` reports that verdict when the stamp matches its own dvc.lock (`promoted=false`:
it promoted nothing), and otherwise runs `register` again (`redo`), with the stages whose
uncached outputs it needs (`evaluate`, for reports/metrics.json).

The champion reported is the Jobs' own: the version `register` promoted, or else the champion
of the previous verdict. The registry's `champion` alias is not trusted for what to serve
(anyone who can reach MLflow can move it); when it names another version, the Job says so.

Runs in the trainer image (boto3 and PyYAML come with DVC and MLflow); standard library
otherwise. The state lives at <DVC_REMOTE_URL>/state/: outside DVC's own layout
(files/md5/...), so DVC never mistakes it for cache.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

LOCK = Path("dvc.lock")
PARAMS = Path("params.yaml")
PIPELINE = Path("dvc.yaml")
REGISTER = "register"
REGISTRATION = Path("reports/registration.json")
VERDICT = "registration.json"  # its name under <remote>/state/


def _state_location(name: str) -> tuple[str, str]:
    bucket, _, prefix = os.environ["DVC_REMOTE_URL"].removeprefix("s3://").partition("/")
    return bucket, f"{prefix.strip('/')}/state/{name}".lstrip("/")


def _lock_location() -> tuple[str, str]:
    return _state_location(LOCK.name)


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


def _stages() -> list[str]:
    return os.environ.get("DVC_STAGES", "").split()


def register_inputs() -> dict[str, str]:
    """What `register` decided on: its dependencies' hashes as dvc.lock records them."""
    import yaml

    stages = (yaml.safe_load(LOCK.read_text()) or {}).get("stages", {}) if LOCK.is_file() else {}
    deps = stages.get(REGISTER, {}).get("deps", [])
    return {d["path"]: d.get("md5", "") for d in deps}


def stored_verdict() -> dict | None:
    """The verdict the last Job that ran `register` kept in the remote, if any."""
    import boto3
    from botocore.exceptions import ClientError

    bucket, key = _state_location(VERDICT)
    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
            raise
        return None
    return json.loads(body)


def redecide_stages() -> list[str]:
    """`register` and the stages writing its uncached (`cache: false`) dependencies, in
    dvc.yaml's order: what must run again for a verdict when none was kept."""
    import yaml

    stages = yaml.safe_load(PIPELINE.read_text())["stages"]
    needed = {str(d) for d in stages[REGISTER].get("deps", [])}
    order = []
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path, opts = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            if path in needed and opts.get("cache") is False:
                order.append(name)
                break
    return [*order, REGISTER]


def redo() -> list[str]:
    """The stages to force for a verdict: none when `register` is not this Job's, ran here, or
    was skipped with a kept verdict for the same inputs."""
    if REGISTER not in _stages() or REGISTRATION.is_file():
        return []
    kept = stored_verdict()
    if kept and kept.get("inputs") == register_inputs():
        return []
    where = "none was kept" if kept is None else "the kept one is for other inputs"
    print(f"[job] register was skipped and {where}: deciding again", file=sys.stderr)
    return redecide_stages()


def verdict() -> dict | None:
    """This Job's verdict (see the module's docstring); None for a Job without `register`.

    Raises:
        SystemExit: `register` was skipped and no verdict for its inputs was kept (`redo`
        should have run it).
    """
    if REGISTER not in _stages():
        return None
    kept = stored_verdict()
    inputs = register_inputs()
    if not REGISTRATION.is_file():  # skipped: DVC saw the same model and metrics
        if not kept or kept.get("inputs") != inputs:
            raise SystemExit(f"[job] register did not run and no verdict was kept for {inputs}")
        print(
            f"[job] register unchanged: the verdict of an earlier Job (version {kept['version']})"
        )
        return {**kept, "promoted": False, "reused": True}
    r = json.loads(REGISTRATION.read_text())
    if r["promoted"]:
        champion = r["version"]
    elif kept and kept.get("champion") is not None:
        champion = kept["champion"]
    else:  # no earlier verdict: the registry's champion is all there is
        champion = r["champion"]
    if r["champion"] != champion:
        print(
            f"[job] the registry's champion alias names version {r['champion']}, the Jobs'"
            f" last verdict {champion}: reporting {champion}",
            file=sys.stderr,
        )
    decided = {"version": r["version"], "promoted": r["promoted"], "champion": champion}
    import boto3

    bucket, key = _state_location(VERDICT)
    kept_now = {**decided, "inputs": inputs}
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(kept_now).encode())
    print(f"[job] verdict -> s3://{bucket}/{key}")
    return {**decided, "reused": False}


def report(path: str) -> None:
    """The verdict, one line, as the termination message (nothing for a Job without one)."""
    v = verdict()
    if v is None:
        return
    line = f"version={v['version']} promoted={str(v['promoted']).lower()} champion={v['champion']}"
    if v["reused"]:
        line += " register=skipped"
    Path(path).write_text(line + "\n")
    print(f"[job] registration: {line}")


def main(argv: list[str]) -> int:
    if argv == ["start"]:
        set_data_source()
        fetch_lock()
    elif argv == ["redo"]:
        print(" ".join(redo()))
    elif argv == ["finish"]:
        push_lock()
        report(os.environ.get("TERMINATION_LOG", "/dev/termination-log"))
    else:
        print("usage: job_state.py start|redo|finish", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
