"""Shared fixtures (project paths, the raw data mirror) and how `make test` spreads the tests
over pytest-xdist workers.

`make test` runs `pytest -n 4 --dist loadgroup`: each worker is its own process with its
own session, so a session-scoped server stack would start once per worker that runs one of its
tests. `pytest_collection_modifyitems` below therefore groups the tests (`xdist_group`):

- tests that use a tier's shared stack (`SHARED_STACKS`: the browser stack, the serving
  predictor and transformer, the services platform or S3 endpoint, the k8s loopback cluster)
  run on one worker per stack, so each stack starts once;
- tests that use a module-scoped fixture (a tiny `dvc repro`, the feedback loop, a Prometheus)
  run on one worker per module, so that fixture runs once;
- every other test goes to whichever worker is free.

Groups are handed out in collection order (`make test` passes `--no-loadscope-reorder`, else
xdist would sort them by size), so the longest ones (tiers in `FIRST`, grouped tests first) are
collected first: they start at once instead of holding the run up at its end. Without xdist
(`pytest -p no:xdist`, or a plain `pytest tests/unit`) the order is the same and the groups are
inert.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

# Session-scoped fixtures that start servers, per tier: the tests using one run on the same
# worker. Only the root of each stack is named (`transformer` needs `predictor`, `buckets`
# needs `cluster`): a test's fixture names include everything its fixtures need.
SHARED_STACKS = {
    "browser": ("stack",),
    "serving": ("predictor",),
    "services": ("platform", "s3_endpoint"),
    "k8s": ("cluster",),
}
# Tiers whose every test carries a marker, so `make test-fast` (-m "not ...") can leave them out:
# tests/data reads the raw data set, tests/model the trained model.
TIER_MARKERS = {"data": "data", "model": "model"}
# Tiers whose groups take longest (real `dvc repro` runs, server stacks): scheduled first.
FIRST = ("loop", "services", "integration", "browser", "launch", "serving", "k8s", "monitoring")


@pytest.fixture(scope="session")
def raw_data() -> Path:
    """The raw data mirror, found or downloaded as `ingest` does (tests/support/rawdata.py)."""
    from pipelines.download import DownloadError
    from tests.support.rawdata import raw_data_dir

    try:
        path = raw_data_dir()
    except DownloadError as exc:
        pytest.fail(f"no raw data: {exc} (set BUKVA_TEST_DATA to a mirror folder)")
    if not (path / "rukopys" / "glyphs.csv").is_file():
        pytest.fail(f"raw data mirror not found at {path} (BUKVA_TEST_DATA)")
    return path


@pytest.fixture(autouse=True)
def _mlflow_environment_stays_as_it_was():
    """`mlflow.set_experiment` writes MLFLOW_EXPERIMENT_ID into os.environ; a test that runs a
    stage in-process would leave it for every later test on the same worker, whose child
    processes then look for that experiment on another tracking server. Put MLFLOW_* back."""
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in before]:
        del os.environ[key]
    os.environ.update(before)


def _tier(item: pytest.Item) -> str:
    try:
        return item.path.relative_to(TESTS).parts[0]
    except ValueError:
        return ""


def _group(item: pytest.Item) -> str | None:
    """The xdist group of a test: its tier's stack, its module, or none (see the docstring)."""
    tier = _tier(item)
    used = set(getattr(item, "fixturenames", ()))
    for name in SHARED_STACKS.get(tier, ()):
        if name in used:
            return f"{tier}-{name}"
    info = getattr(item, "_fixtureinfo", None)
    for name in used:
        defs = info.name2fixturedefs.get(name, ()) if info is not None else ()
        if any(d.scope == "module" for d in defs):
            return item.path.relative_to(TESTS).with_suffix("").as_posix().replace("/", ".")
    return None


def _suffix_group(item: pytest.Item, group: str) -> None:
    """What xdist's `--dist loadgroup` does for an `xdist_group` mark, for pytest >= 9.2.

    The scheduler reads a test's group from its node id ("...::test@group"); xdist 3.8 adds it
    by setting `item._nodeid`, which pytest 9.2 no longer reads (the id lives in `item._id`),
    so without this every test would be scheduled alone and the stacks started many times.
    """
    if "@" in item.nodeid.rpartition("]")[2] or not hasattr(item, "_id"):
        return  # xdist did it, or a pytest where xdist's own way works
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {tier: i for i, tier in enumerate(FIRST)}
    groups = {item.nodeid: _group(item) for item in items}
    for item in items:
        if marker := TIER_MARKERS.get(_tier(item)):
            item.add_marker(marker)
        if groups[item.nodeid] is not None and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    # Long tiers first, and in a tier its groups first; the sort is stable (else as collected).
    items.sort(key=lambda i: (rank.get(_tier(i), len(FIRST)), groups[i.nodeid] is None))
    if getattr(config.option, "loadgroup", False):  # set on xdist workers under loadgroup
        for item in items:
            if groups[item.nodeid] is not None:
                _suffix_group(item, groups[item.nodeid])
