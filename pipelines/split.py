"""Stage `split`: train / validation / test, stratified by source, label and case, seeded.

Exact duplicates (same raw pixels, or the same normalized input) form one group and always
land in the same split, so no image is in two splits. Feedback drawings (source "feedback")
only ever join train (or their duplicate twin's split): validation and test are split from the
public data alone, exactly as without feedback, so they stay comparable across retrains.
Writes data/split/split.csv (id, split) and data/split/summary.json (sizes and composition of
each split).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter, defaultdict
from pathlib import Path

from pipelines.common import load_params, log, run_cli, write_json
from pipelines.data import SPLITS, read_index, write_split


def duplicate_groups(rows: list[dict]) -> list[int]:
    """Group id per row: rows sharing a raw or input hash (transitively) share a group."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        for key in (("raw", row["raw_hash"]), ("input", row["input_hash"])):
            if key in first_seen:
                parent[find(i)] = find(first_seen[key])
            else:
                first_seen[key] = i
    return [find(i) for i in range(len(rows))]


def assign_splits(
    rows: list[dict], seed: int, val_fraction: float, test_fraction: float
) -> list[str]:
    """Split name per row, stratified by (source, label, uppercase) over duplicate groups."""
    groups = duplicate_groups(rows)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    strata: dict[tuple, list[int]] = defaultdict(list)
    for g, idx in sorted(members.items()):
        first = rows[idx[0]]
        strata[(first["source"], first["label"], first["uppercase"])].append(g)

    rng = random.Random(seed)
    out = [""] * len(rows)
    for key in sorted(strata):
        group_ids = strata[key]
        rng.shuffle(group_ids)
        n = sum(len(members[g]) for g in group_ids)
        want = {"test": round(n * test_fraction), "val": round(n * val_fraction)}
        taken = Counter()
        for g in group_ids:
            name = next((s for s in ("test", "val") if taken[s] < want[s]), "train")
            taken[name] += len(members[g])
            for i in members[g]:
                out[i] = name
    return out


def assign_with_feedback(
    rows: list[dict], seed: int, val_fraction: float, test_fraction: float
) -> list[str]:
    """`assign_splits` over the public rows; feedback rows go to train, or to the split of a
    public row they duplicate (so a drawing can never leak into the test split's twin)."""
    public = [i for i, r in enumerate(rows) if r["source"] != "feedback"]
    if len(public) == len(rows):
        return assign_splits(rows, seed, val_fraction, test_fraction)
    out = ["train"] * len(rows)
    for i, name in zip(
        public,
        assign_splits([rows[i] for i in public], seed, val_fraction, test_fraction),
        strict=True,
    ):
        out[i] = name
    groups = duplicate_groups(rows)
    public_split = {groups[i]: out[i] for i in public}
    for i, row in enumerate(rows):
        if row["source"] == "feedback":
            out[i] = public_split.get(groups[i], "train")
    return out


def summarize(rows: list[dict], splits: list[str]) -> dict:
    """Sizes and composition per split (by source, by label, letters by case)."""
    summary = {}
    for name in SPLITS:
        picked = [r for r, s in zip(rows, splits, strict=True) if s == name]
        summary[name] = {
            "size": len(picked),
            "by_source": dict(Counter(r["source"] for r in picked)),
            "by_label": dict(sorted(Counter(r["label"] for r in picked).items())),
            "letters_by_case": {
                "upper": sum(r["uppercase"] == 1 for r in picked),
                "lower": sum(r["uppercase"] == 0 for r in picked),
                "unknown": sum(r["uppercase"] == -1 and r["source"] != "mnist" for r in picked),
            },
        }
    summary["duplicate_rows"] = len(rows) - len(set(duplicate_groups(rows)))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--out", default="data/split")
    args = parser.parse_args()
    params = load_params("split")
    rows = read_index(Path(args.prepared))
    splits = assign_with_feedback(
        rows, int(params["seed"]), float(params["val_fraction"]), float(params["test_fraction"])
    )
    out = Path(args.out)
    write_split(out, [r["id"] for r in rows], splits)
    summary = summarize(rows, splits)
    write_json(out / "summary.json", summary)
    for name in SPLITS:
        s = summary[name]
        log("split", f"{name}: {s['size']} images {s['by_source']} letters {s['letters_by_case']}")
    log("split", f"{summary['duplicate_rows']} duplicate images kept with their twin")


if __name__ == "__main__":
    run_cli("split", main)
