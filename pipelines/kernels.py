"""`python -m pipelines.kernels`: the CPU kernels a stage process runs with (pipelines/cpu.py),
as JSON."""

import json
import sys

from pipelines.cpu import describe

if __name__ == "__main__":
    json.dump(describe(), sys.stdout, indent=2)
    print()
