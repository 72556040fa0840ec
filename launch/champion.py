"""`make up`'s first step: make sure the registry has a champion to serve.

    python -m launch.champion

The registry is a side effect outside DVC: `register` writes to the tracking store at
`MLFLOW_TRACKING_URI` (default: the embedded `mlruns/`), and DVC knows nothing of it. So a new
tracking server (`source run/services/env`) or a deleted `mlruns/` leaves a pipeline that DVC
calls up to date and a registry with no champion. In order, until there is one:

1. the registry already has `bukva-cnn@champion`: nothing to do;
2. `dvc repro`: trains what changed (all of it on a fresh checkout), and registers;
3. `dvc repro --force --single-item register`: the trained model, registered again in the
   store that lost it (the gate promotes a first version).

Exits non-zero, saying why, if there is still no champion. The registry is asked in this
process (`pipelines.tracking.has_champion`: no torch, MLflow imported once), not through a
`python -m pipelines.register --has-champion` per question: with a champion already there
`make up` gets past this step in a fraction of a second instead of about 6 s.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from bukva.registry import CHAMPION_ALIAS, REGISTERED_MODEL

CHAMPION = f"{REGISTERED_MODEL}@{CHAMPION_ALIAS}"

STEPS = (
    ("training what changed (dvc repro)", ["repro"]),
    (
        "the registry has no champion but the pipeline is up to date: registering the "
        "trained model again (dvc repro --force --single-item register)",
        ["repro", "--force", "--single-item", "register"],
    ),
)


def has_champion() -> bool:
    """The registry's answer; False, saying why, when it cannot be asked (then `dvc repro`'s
    register stage meets the same store and fails naming it)."""
    from pipelines.tracking import TrackingUnavailable
    from pipelines.tracking import has_champion as ask

    try:
        return ask()
    except TrackingUnavailable as exc:  # the store named
        print(f"champion: cannot ask the registry: {exc}", file=sys.stderr, flush=True)
        return False


def ensure(dvc: Sequence[str] = (sys.executable, "-m", "dvc")) -> int:
    """0 once the registry has a champion (running the steps above as needed), else 1."""
    if has_champion():
        print(f"champion: the registry has {CHAMPION}", flush=True)
        return 0
    for what, args in STEPS:
        print(f"champion: {what}", flush=True)
        if subprocess.run([*dvc, *args], check=False).returncode != 0:
            print(f"champion: `dvc {' '.join(args)}` failed (see above)", file=sys.stderr)
            return 1
        if has_champion():
            print(f"champion: the registry has {CHAMPION}", flush=True)
            return 0
    print(
        f"champion: still no {CHAMPION} after training and registering; see "
        "reports/registration.json for the gate's verdict",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(ensure())
