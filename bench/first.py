"""First answer against later ones, at the HTTP level: `python -m bench.first`.

Starts the predictor and the transformer as `make up` does (`launch.serve.running`), and the
moment the transformer reports ready sends the canvas drawing (`bench.load.canvas_png`, the
greyscale PNG the app sends) through the app's own client (`frontend.client.InferenceClient`):

* `first`: the very first request of a fresh server, on a fresh connection (what the first
  stroke of the first session after `make up` or a pod start meets);
* `new_connection`: the first request of a second client, the server already warm (what a
  fresh app process meets: only the connection is new);
* `later`: the next `--requests` requests on a kept-alive connection (median and 90th
  percentile).

Figures go to reports/first_request.json (with the machine and its load); they are recorded,
never asserted: absolute milliseconds move with the machine, the first/later ratio less so.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from bench.load import canvas_png, machine, write_report
from launch.processes import free_port
from launch.serve import Ports, running
from transformer.__main__ import switch


def timed(client, png: bytes) -> float:
    start = time.perf_counter()
    answer = client.predict(png)
    elapsed = (time.perf_counter() - start) * 1000
    if answer.status != "ok":
        raise RuntimeError(f"unexpected answer {answer}")
    return elapsed


def measure(model_args: list[str], requests: int, warm_up: bool) -> dict:
    from frontend.client import InferenceClient

    png = canvas_png()
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    extra = ["--warm_up", str(warm_up).lower()]
    with running(ports, model_args, transformer_extra=extra, quiet=True):
        base = f"http://127.0.0.1:{ports.transformer_http}"
        first_client = InferenceClient(base)
        first = timed(first_client, png)
        later = [timed(first_client, png) for _ in range(requests)]
        second_client = InferenceClient(base)
        new_connection = timed(second_client, png)
        first_client.close()
        second_client.close()
    ordered = sorted(later)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    median = statistics.median(later)
    return {
        "first_ms": round(first, 2),
        "new_connection_ms": round(new_connection, 2),
        "later_median_ms": round(median, 2),
        "later_p90_ms": round(p90, 2),
        "first_over_later": round(first / median, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.first", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model_dir", help="serve this folder (default: the registry champion)")
    parser.add_argument("--starts", type=int, default=3, help="fresh server starts to measure")
    parser.add_argument("--requests", type=int, default=20, help="later requests per start")
    parser.add_argument(
        "--warm_up",
        default=True,
        type=switch,
        help="the transformer's --warm_up (false: measure a cold start)",
    )
    parser.add_argument("--out", default="reports/first_request.json")
    args = parser.parse_args(argv)
    model_args = ["--model_dir", args.model_dir] if args.model_dir else []
    runs = []
    for index in range(args.starts):
        runs.append(measure(model_args, args.requests, args.warm_up))
        print(f"start {index + 1}: {runs[-1]}", flush=True)
    report = {
        "runs": runs,
        "median": {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]},
        "warm_up": args.warm_up,
        "machine": machine(),
        "request": "canvas 280x280 greyscale PNG, v2 JSON + base64, frontend.client",
    }
    out = write_report(args.out, report)
    print(f"first: median over {args.starts} starts {report['median']}; in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
