"""`python -m pipelines.kernels`: the CPU kernels a stage process runs with (pipelines/cpu.py),
as JSON. `--fingerprint` adds `fingerprint`: a few training steps of the network on fixed
random data, hashed (`pipelines.cpu.fingerprint`, ~5 s); the same value on two machines means
the same arithmetic, so compare it before comparing two `make repro` runs."""

import argparse
import json
import sys

from pipelines.cpu import describe, fingerprint

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingerprint", action="store_true", help="add the kernels' fingerprint")
    args = parser.parse_args()
    shown = describe()
    if args.fingerprint:
        shown["fingerprint"] = fingerprint()
    json.dump(shown, sys.stdout, indent=2)
    print()
