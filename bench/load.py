"""`make bench`: latency and throughput of the served model, recorded to reports/bench.json.

Scenarios (each a fixed request body replayed by `wrk` over keep-alive connections):

* transformer, one PNG per request (JSON + base64 and binary extension):
  concurrency 1 for p50/p99 latency, concurrency 16 for requests/s and errors;
* predictor only, one FP32 [1,1,28,28] tensor: the same two figures;
* predictor batches N = 1..256 at concurrency 1: images/s.

The figures are recorded, never asserted: the machine is shared, so they are evidence, not a
test. Goals (issue 3): through the transformer p50 <= 5 ms, p99 <= 15 ms at concurrency 1 and
>= 300 requests/s at concurrency 16 with no errors.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.servers import Ports, running

GOALS = {"p50_ms": 5.0, "p99_ms": 15.0, "rps_c16": 300.0}
LUA = """
wrk.method = "POST"
local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,\\"non2xx\\":%d," ..
    "\\"p50_ms\\":%.3f,\\"p90_ms\\":%.3f,\\"p99_ms\\":%.3f,\\"max_ms\\":%.3f,\\"mean_ms\\":%.3f}}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""


def v2_json(png: bytes) -> tuple[bytes, dict[str, str]]:
    spec = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [1],
        "data": [base64.b64encode(png).decode()],
    }
    return json.dumps({"inputs": [spec]}).encode(), {"Content-Type": "application/json"}


def v2_binary(name: str, datatype: str, shape: list[int], raw: bytes, binary_out: bool):
    spec = {
        "name": name,
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": len(raw)},
    }
    header = {"inputs": [spec]} | (
        {"parameters": {"binary_data_output": True}} if binary_out else {}
    )
    head = json.dumps(header).encode()
    return head + raw, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }


def wrk(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: int, work: Path
) -> dict:
    """Run wrk against `url` with a fixed POST body; return its summary as a dict."""
    body_file = work / f"body-{abs(hash(body))}.bin"
    body_file.write_bytes(body)
    lua = work / "post.lua"
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    lua.write_text(LUA.format(body=body_file, headers=header_lines))
    threads = min(connections, 2)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    result["rps"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    result["connections"] = connections
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scenario(
    name: str,
    url: str,
    body: bytes,
    headers: dict,
    seconds: int,
    work: Path,
    pids: dict[str, int],
) -> dict:
    """c1 latency and c16 throughput; CPU ms per request of each server during the c16 run
    (a figure that, unlike wall-clock ones, hardly depends on what else the machine runs)."""
    wrk(url, body, headers, 4, 2, work)  # warm-up: connection pools, allocator, TorchScript
    single = wrk(url, body, headers, 1, seconds, work)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    many = wrk(url, body, headers, 16, seconds, work)
    many["cpu_ms_per_request"] = {
        name: round((cpu_seconds(pid) - before[name]) * 1000 / max(many["requests"], 1), 3)
        for name, pid in pids.items()
    }
    print(
        f"{name:34s} c1 p50 {single['p50_ms']:6.2f} ms  p99 {single['p99_ms']:6.2f} ms | "
        f"c16 {many['rps']:7.1f} req/s  p99 {many['p99_ms']:6.2f} ms  "
        f"errors {many['errors'] + many['non2xx']} | cpu ms/req {many['cpu_ms_per_request']}",
        flush=True,
    )
    return {"c1": single, "c16": many}


def batches(url: str, sizes: list[int], seconds: int, work: Path) -> dict:
    rng = np.random.default_rng(0)
    result = {}
    for n in sizes:
        raw = rng.random((n, 1, 28, 28), dtype=np.float32).tobytes()
        body, headers = v2_binary("image", "FP32", [n, 1, 28, 28], raw, binary_out=True)
        run = wrk(url, body, headers, 1, seconds, work)
        run["images_per_s"] = round(run["rps"] * n, 1)
        result[str(n)] = run
        print(
            f"predictor batch {n:4d}: {run['images_per_s']:9.1f} images/s  "
            f"p50 {run['p50_ms']:7.2f} ms",
            flush=True,
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="serve this folder (default: the registry champion)")
    parser.add_argument("--png", default="../shared/data/rukopys/glyphs/a-0.png")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--out", default="reports/bench.json")
    parser.add_argument(
        "--predictor_protocol",
        default="grpc-v2",
        choices=["v2", "grpc-v2"],
        help="transformer -> predictor hop for the main figures (as `make serve` runs it)",
    )
    parser.add_argument(
        "--compare_hop",
        default=True,
        type=lambda v: v.lower() in ("1", "true", "yes"),
        help="also measure the transformer with the other hop (REST v2 is what Kubernetes uses)",
    )
    parser.add_argument("--batch_sizes", default="1,8,32,128,256")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    png = Path(args.png).read_bytes()
    model_args = ["--model_dir", args.model_dir] if args.model_dir else []
    ports = Ports(18080, 18081, 18090, 18091)  # away from a `make serve` that may be running
    quiet = ["--enable_latency_logging", "false"]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "model": args.model_dir or "models:/bukva-cnn@champion",
        "predictor_protocol": args.predictor_protocol,
        "goals": GOALS,
    }
    png_body = v2_json(png)
    raw = struct.pack("<I", len(png)) + png
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(ports, model_args, args.predictor_protocol, quiet, quiet, quiet=True) as serving,
    ):
        work = Path(tmp)
        both = {"transformer": serving.transformer_pid, "predictor": serving.predictor_pid}
        t_url = f"http://127.0.0.1:{ports.transformer_http}/v2/models/bukva/infer"
        p_url = f"http://127.0.0.1:{ports.predictor_http}/v2/models/bukva/infer"
        report["transformer_png_json"] = scenario(
            "transformer, 1 PNG, JSON+base64", t_url, *png_body, args.seconds, work, both
        )
        body = v2_binary("image", "BYTES", [1], raw, binary_out=False)
        report["transformer_png_binary"] = scenario(
            "transformer, 1 PNG, binary", t_url, *body, args.seconds, work, both
        )
        tensor = np.zeros((1, 1, 28, 28), np.float32).tobytes()
        body = v2_binary("image", "FP32", [1, 1, 28, 28], tensor, binary_out=True)
        report["predictor_tensor"] = scenario(
            "predictor only, 1 tensor, binary",
            p_url,
            *body,
            args.seconds,
            work,
            {"predictor": serving.predictor_pid},
        )
        sizes = [int(s) for s in args.batch_sizes.split(",")]
        report["predictor_batches"] = batches(p_url, sizes, max(3, args.seconds // 2), work)
    if args.compare_hop:
        other = "v2" if args.predictor_protocol == "grpc-v2" else "grpc-v2"
        with (
            tempfile.TemporaryDirectory() as tmp,
            running(ports, model_args, other, quiet, quiet, quiet=True) as serving,
        ):
            both = {"transformer": serving.transformer_pid, "predictor": serving.predictor_pid}
            t_url = f"http://127.0.0.1:{ports.transformer_http}/v2/models/bukva/infer"
            report[f"transformer_png_json_{other.replace('-', '_')}_hop"] = scenario(
                f"transformer -{other}-> predictor, 1 PNG",
                t_url,
                *png_body,
                args.seconds,
                Path(tmp),
                both,
            )
    report["load_avg_1m_after"] = os.getloadavg()[0]
    main_run = report["transformer_png_json"]
    report["meets_goals"] = {
        "p50": main_run["c1"]["p50_ms"] <= GOALS["p50_ms"],
        "p99": main_run["c1"]["p99_ms"] <= GOALS["p99_ms"],
        "rps_c16": main_run["c16"]["rps"] >= GOALS["rps_c16"],
        "no_errors": main_run["c16"]["errors"] + main_run["c16"]["non2xx"] == 0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"bench: figures in {out}; goals met: {report['meets_goals']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
