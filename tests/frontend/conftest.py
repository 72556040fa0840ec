"""The frontend's tests import the top-level `frontend` package (the app), so the checkout's
root goes on sys.path, as for the serving tests; `frontend` then resolves to the app, never to
this test folder (which is no package)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
