"""Review feedback before it trains, without the app: list, approve, reject.

    python -m pipelines.review list [--all]        new records, the most doubtful first
    python -m pipelines.review reject ID [ID ...]  a wrong label: never trains
    python -m pipelines.review approve ID [ID ...]
    python -m pipelines.review approve-all         every record not yet reviewed

The store is `--store` (a folder or s3:// URI), else params.yaml `ingest.feedback`, else the
app's BUKVA_FEEDBACK_URI (relative folders from BUKVA_HOME). A decision is an object
`reviews/<id>.json` in the store (`bukva.storage.set_review`); the app's Review page writes
the same. `make retrain` takes approved records only (params.yaml
`ingest.feedback_reviewed_only`). "Doubtful" is the model's probability for the confirmed
label when the drawing was saved (lowest first; a label outside its top-k counts as 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bukva.settings import Settings
from bukva.storage import (
    APPROVED,
    REJECTED,
    StoredRecord,
    StoreUnavailable,
    open_store,
    set_review,
    stored_records,
)
from pipelines.common import PARAMS_FILE, StageError, load_params, run_cli


def store_uri(given: str | None) -> tuple[str, Settings]:
    settings = Settings.from_env()
    if given:
        return given, settings
    if Path(PARAMS_FILE).is_file():
        configured = load_params("ingest").get("feedback") or ""
        if configured:
            return configured, settings
    return settings.bukva_feedback_uri, settings


def describe(row: StoredRecord) -> str:
    record = row.record
    prob = "  –  " if record.label_probability is None else f"{record.label_probability:5.1%}"
    prompt = f" prompt={record.prompt.get('text', '')}" if record.prompt else ""
    return (
        f"{record.id}  {record.text:2} p={prob} predicted={record.predicted or '-':2} "
        f"{record.source}/{record.mode}{prompt} {record.created_at} {row.review or 'new'}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="feedback store: folder or s3:// URI")
    parser.add_argument("--reviewer", default="", help="name stored with the decisions")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="records not yet reviewed, most doubtful first")
    listing.add_argument("--all", action="store_true", help="reviewed records too")
    for name in ("approve", "reject"):
        cmd = commands.add_parser(name, help=f"{name} records by id")
        cmd.add_argument("ids", nargs="+", metavar="ID")
    commands.add_parser("approve-all", help="approve every record not yet reviewed")
    args = parser.parse_args(argv)

    uri, settings = store_uri(args.store)
    try:
        store = open_store(uri, settings.aws_endpoint_url, base=settings.home)
        records, broken = stored_records(store)
    except (ValueError, StoreUnavailable) as exc:
        raise StageError(f"feedback store {uri}: {exc}") from None
    by_id = {row.record.id: row for row in records}

    if args.command == "list":
        shown = [r for r in records if args.all or not r.review]
        for row in shown:
            print(describe(row))
        new = sum(not r.review for r in records)
        print(f"{uri}: {len(records)} records, {new} not reviewed, {len(broken)} unreadable")
        for key, reason in broken.items():
            print(f"unreadable: {key}: {reason}")
        return
    if args.command == "approve-all":
        chosen, status = [r for r in records if not r.review], APPROVED
    else:
        unknown = [i for i in args.ids if i not in by_id]
        if unknown:
            raise StageError(f"no record with id {', '.join(unknown)} in {uri}")
        chosen = [by_id[i] for i in args.ids]
        status = APPROVED if args.command == "approve" else REJECTED
    try:
        for row in chosen:
            set_review(store, row.record, status, args.reviewer)
    except StoreUnavailable as exc:
        raise StageError(str(exc)) from None
    print(f"{status}: {len(chosen)} record(s) in {uri}")


if __name__ == "__main__":
    run_cli("review", main)
