"""`python -m pipelines`: the CPU kernels a stage process runs with (pipelines/cpu.py), as JSON."""

import json
import sys

from pipelines.cpu import describe

json.dump(describe(), sys.stdout, indent=2)
print()
