"""`split`: stratified, seeded, and no image (or exact duplicate) in two splits."""

from collections import Counter

from pipelines.split import assign_splits, duplicate_groups


def _rows():
    rows = []
    for label, upper, n in [("а", 0, 20), ("а", 1, 40), ("ш", -1, 17), ("7", -1, 200)]:
        for i in range(n):
            source = "mnist" if label == "7" else "rukopys"
            rows.append(
                {
                    "id": f"{label}{upper}-{i}",
                    "source": source,
                    "label": label,
                    "uppercase": upper,
                    "raw_hash": f"r-{label}{upper}-{i}",
                    "input_hash": f"i-{label}{upper}-{i}",
                }
            )
    return rows


def test_every_stratum_is_split_in_proportion():
    rows = _rows()
    splits = assign_splits(rows, seed=1, val_fraction=0.15, test_fraction=0.15)
    for key in {(r["label"], r["uppercase"]) for r in rows}:
        picked = [
            s for r, s in zip(rows, splits, strict=False) if (r["label"], r["uppercase"]) == key
        ]
        counts = Counter(picked)
        n = len(picked)
        assert counts["test"] == round(n * 0.15) and counts["val"] == round(n * 0.15)
        assert counts["train"] == n - counts["test"] - counts["val"]


def test_seeded_and_seed_sensitive():
    rows = _rows()
    a = assign_splits(rows, seed=1, val_fraction=0.15, test_fraction=0.15)
    assert a == assign_splits(rows, seed=1, val_fraction=0.15, test_fraction=0.15)
    assert a != assign_splits(rows, seed=2, val_fraction=0.15, test_fraction=0.15)


def test_exact_duplicates_stay_together():
    rows = _rows()
    # three copies of one image under different ids (raw twin, normalized twin, chain)
    rows[5]["raw_hash"] = rows[0]["raw_hash"]
    rows[9]["input_hash"] = rows[5]["input_hash"]
    groups = duplicate_groups(rows)
    assert groups[0] == groups[5] == groups[9]
    for seed in range(20):
        s = assign_splits(rows, seed=seed, val_fraction=0.15, test_fraction=0.15)
        assert s[0] == s[5] == s[9]


def test_no_id_in_two_splits_and_nothing_left_out():
    rows = _rows()
    splits = assign_splits(rows, seed=3, val_fraction=0.2, test_fraction=0.1)
    assert len(splits) == len(rows) and set(splits) == {"train", "val", "test"}
