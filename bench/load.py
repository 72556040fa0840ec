"""`make bench`: latency, throughput and CPU per request of the served model, as the app uses it.

The servers start exactly as `make up` starts them (`launch.serve.running`: the gRPC hop, the
log level and per-request trace of `bukva.settings.Settings`). Each scenario replays one fixed
request with `wrk` over keep-alive connections: concurrency 1 for p50/p99 latency, then
concurrency 16 for requests/s and errors. During both runs the CPU time of each server process
(Linux /proc) gives CPU milliseconds per request per component: unlike the wall-clock figures,
it hardly moves with what else the machine runs.

Scenarios:
* `canvas`: what the app sends, a 280x280 greyscale PNG of a drawing (painted by `bukva.strokes`
  with the canvas brush) as v2 JSON + base64, through transformer -> predictor. The goals
  apply to this one: p50 <= 6 ms and p99 <= 15 ms at concurrency 1, >= 300 requests/s at
  concurrency 16 with no errors;
* `onehop`: the same request to the one-hop baseline (`bench.onehop`: one uvicorn process
  that decodes, normalises and runs the same model.onnx), the least a user could deploy
  instead. It runs interleaved with `canvas` (`--rounds`, default 2: two-hop, one-hop, then
  one-hop, two-hop, so a load that drifts during the run weighs on both alike), and
  `ratios` gives two-hop / one-hop: p50 at concurrency 1 (goal <= 1.1), requests/s at
  concurrency 16 (goal >= 1.0), and CPU ms per request at concurrency 16 (transformer +
  predictor over the baseline's one process), each the median of the rounds' ratios.
  Unlike absolute figures, a ratio measured in the same minutes hardly moves with the machine;
* `glyph`: a scanned Rukopys glyph (200x200 PNG), the same way;
* `predictor`: one FP32 [1,1,28,28] tensor straight to the predictor (binary extension);
* optional: predictor batches (`--batch_sizes`) and the REST hop Kubernetes uses
  (`--compare_hop true`).

reports/bench.json records the figures with the CPU model, core count and load average: they
are evidence about one machine at one moment, never asserted. Without `--model_dir` and without
a registered champion, a random-weight network is served (the same compute as a trained one),
exported to ONNX as registration would, and the report says so.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bukva.contract import INPUT, INPUT_SHAPE, infer_path
from bukva.registry import CHAMPION_URI
from bukva.settings import Settings
from launch.processes import Process, free_port, stop_all
from launch.serve import ROOT, Ports, running, server_env
from transformer.__main__ import switch

GOALS = {
    "p50_ms": 6.0,
    "p99_ms": 15.0,
    "rps_c16": 300.0,
    # two-hop / one-hop baseline, same request, same minutes (issue: serving ahead of one hop)
    "ratio_p50_c1": 1.1,
    "ratio_rps_c16": 1.0,
}
# A scanned Rukopys glyph (ж, 200x200) the repository ships: no data set needed to bench.
GLYPH = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rukopys_zh-1.png"
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


def canvas_png() -> bytes:
    """An "а" drawn on the app's canvas: 280x280, black brush on white, an 8-bit greyscale PNG
    as the canvas sends it (frontend/canvas.js `greyPng`)."""
    import io

    from PIL import Image

    from bukva.strokes import render

    t = np.linspace(0, 2 * np.pi, 40)
    bowl = np.stack([140 + 45 * np.cos(t), 165 + 50 * np.sin(t)], axis=1)
    stem = [(185, 105), (185, 215), (195, 225)]
    buffer = io.BytesIO()
    Image.fromarray(render([bowl, stem])).convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def v2_json(png: bytes) -> tuple[bytes, dict[str, str]]:
    """The request the app sends: one PNG as base64 in a v2 JSON body."""
    data = [base64.b64encode(png).decode()]
    spec = {"name": INPUT, "datatype": "BYTES", "shape": [1], "data": data}
    return json.dumps({"inputs": [spec]}).encode(), {"Content-Type": "application/json"}


def v2_binary(name: str, datatype: str, shape: list[int], raw: bytes, binary_out: bool):
    parameters = {"binary_data_size": len(raw)}
    header = {
        "inputs": [{"name": name, "datatype": datatype, "shape": shape, "parameters": parameters}]
    }
    if binary_out:
        header["parameters"] = {"binary_data_output": True}
    head = json.dumps(header).encode()
    return head + raw, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }


def wrk(url: str, body: bytes, headers: dict, connections: int, seconds: int, work: Path) -> dict:
    """Run wrk against `url` with a fixed POST body; return its summary as a dict."""
    body_file = work / f"body-{abs(hash(body))}.bin"
    body_file.write_bytes(body)
    lua = work / "post.lua"
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    lua.write_text(LUA.format(body=body_file, headers=header_lines))
    threads = min(connections, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    out = subprocess.run([*cmd, "-s", str(lua), url], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    result["rps"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    result["connections"] = connections
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(url, body, headers, connections, seconds, work, pids: dict[str, int]) -> dict:
    """One wrk run, plus the CPU ms per request each server process spent during it."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    run = wrk(url, body, headers, connections, seconds, work)
    run["cpu_ms_per_request"] = {
        name: round((cpu_seconds(pid) - before[name]) * 1000 / max(run["requests"], 1), 3)
        for name, pid in pids.items()
    }
    return run


def scenario(name, url, body, headers, seconds, work, pids: dict[str, int]) -> dict:
    """c1 latency and c16 throughput, each with CPU per request per component."""
    wrk(url, body, headers, 4, 2, work)  # warm-up: connection pools, allocator, caches
    single = measured(url, body, headers, 1, seconds, work, pids)
    many = measured(url, body, headers, 16, seconds, work, pids)
    print(
        f"{name:30s} c1 p50 {single['p50_ms']:6.2f} ms  p99 {single['p99_ms']:6.2f} ms | "
        f"c16 {many['rps']:7.1f} req/s  errors {many['errors'] + many['non2xx']} | "
        f"cpu ms/req {many['cpu_ms_per_request']}",
        flush=True,
    )
    return {"c1": single, "c16": many}


def batches(url: str, sizes: list[int], seconds: int, work: Path) -> dict:
    rng = np.random.default_rng(0)
    result = {}
    for n in sizes:
        raw = rng.random((n, *INPUT_SHAPE), dtype=np.float32).tobytes()
        body, headers = v2_binary(INPUT, "FP32", [n, *INPUT_SHAPE], raw, binary_out=True)
        run = wrk(url, body, headers, 1, seconds, work)
        run["images_per_s"] = round(run["rps"] * n, 1)
        result[str(n)] = run
        print(f"predictor batch {n:4d}: {run['images_per_s']:9.1f} images/s", flush=True)
    return result


def cpu_times() -> list[int]:
    """The machine's CPU time counters since boot (Linux /proc/stat, all CPUs: user, nice,
    system, idle, iowait, irq, softirq, steal, ...); [] where there is no /proc/stat."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return []
    first = stat.read_text().splitlines()[0].split()
    return [int(x) for x in first[1:]] if first and first[0] == "cpu" else []


def steal_percent(before: list[int], after: list[int]) -> float | None:
    """Share of the CPU time between two `cpu_times` readings that the hypervisor gave other
    guests (steal, the 8th counter), in percent: on a shared VM it moves absolute figures
    (the same code took 4.5 ms on one VM and 10.8 ms on one with steal)."""
    if len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return round(100.0 * (after[7] - before[7]) / total, 2) if total > 0 else None


def machine() -> dict:
    """What the figures were measured on: CPU model, cores, load average, versions."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
        if line.startswith("model name")
    ]
    return {
        "cpu_model": models[0] if models else platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
    }


def model_to_serve(model_dir: str | None, work: Path) -> tuple[list[str], str]:
    """Predictor flags and a description: the folder asked for, else the registry champion,
    else a random-weight network exported to ONNX as registration would."""
    if model_dir:
        return ["--model_dir", model_dir], model_dir
    from pipelines.tracking import has_champion

    if has_champion():
        return [], CHAMPION_URI
    import torch

    from bukva.network import BukvaNet, save
    from model.runtime import export

    torch.manual_seed(0)
    folder = save(BukvaNet(), work / "random-model")
    export(folder, folder / "model.onnx")
    return ["--model_dir", str(folder)], "random weights (no champion registered)"


@contextmanager
def baseline(port: int, model_args: list[str], work: Path) -> Iterator[Process]:
    """The one-hop baseline (`bench.onehop`) on `port`, serving what the predictor serves (the
    same flags; none: the same model URI), with the servers' environment (`server_env`)."""
    cmd = [sys.executable, "-m", "bench.onehop", *model_args, "--port", str(port)]
    cmd += ["--download_dir", str(work / "onehop-model")]
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    env = server_env(Settings.from_env())
    process = Process("onehop", cmd, url, env, work / "onehop.log", ROOT)  # its tail if it fails
    try:
        process.start()
        yield process
    finally:
        stop_all([process])


def cpu_total(run: dict) -> float:
    return sum(run["cpu_ms_per_request"].values())


def ratios(two: dict, one: dict) -> dict:
    """Two-hop / one-hop for one round: p50 at c1, req/s at c16, CPU ms per request at c16."""
    return {
        "p50_c1": round(two["c1"]["p50_ms"] / one["c1"]["p50_ms"], 3),
        "rps_c16": round(two["c16"]["rps"] / one["c16"]["rps"], 3),
        "cpu_ms_per_request": round(cpu_total(two["c16"]) / cpu_total(one["c16"]), 3),
    }


def compare(two_hop, one_hop, rounds: int) -> tuple[list[dict], list[dict], dict]:
    """Run the two-hop and the one-hop scenario (callables) `rounds` times, alternating which
    goes first (A B, B A, ...); their runs and the ratios (median over the rounds)."""
    twos, ones, order = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            twos.append(two_hop())
            ones.append(one_hop())
            order += ["two-hop", "one-hop"]
        else:
            ones.append(one_hop())
            twos.append(two_hop())
            order += ["one-hop", "two-hop"]
    per_round = [ratios(two, one) for two, one in zip(twos, ones, strict=True)]
    summary: dict = {k: round(statistics.median(r[k] for r in per_round), 3) for k in per_round[0]}
    summary |= {"per_round": per_round, "order": order, "cpu_from": "the c16 runs"}
    return twos, ones, summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="serve this folder (default: the registry champion)")
    parser.add_argument("--glyph", default=str(GLYPH), help="scanned glyph PNG to send")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="canvas two-hop vs one-hop baseline rounds, alternating which goes first",
    )
    parser.add_argument("--out", default="reports/bench.json")
    parser.add_argument("--batch_sizes", default="", help="e.g. 1,32,256: predictor batches")
    parser.add_argument(
        "--compare_hop",
        default=False,
        type=switch,
        help="also the canvas through the REST hop (what the Kubernetes InferenceService uses)",
    )
    return parser


def write_report(out: str | Path, report: dict) -> Path:
    """Write a bench's figures as indented JSON (its folder made first); the path written."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def main() -> int:
    args = build_parser().parse_args()
    if shutil.which("wrk") is None:
        print("bench: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    report: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    report["machine"] = machine()
    counters = cpu_times()
    report["goals"] = GOALS
    canvas = v2_json(canvas_png())
    glyph = v2_json(Path(args.glyph).read_bytes()) if Path(args.glyph).is_file() else None
    ports = Ports(18080, 18081, 18090, 18091)  # away from a `make serve` that may be running
    t_url = f"http://127.0.0.1:{ports.transformer_http}{infer_path()}"
    p_url = f"http://127.0.0.1:{ports.predictor_http}{infer_path()}"
    onehop_port = free_port()
    o_url = f"http://127.0.0.1:{onehop_port}{infer_path()}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_args, report["model"] = model_to_serve(args.model_dir, work)
        report["predictor_protocol"] = "grpc-v2"  # as `make up`
        with (
            running(ports, model_args, "grpc-v2", quiet=True) as serving,
            baseline(onehop_port, model_args, work) as onehop,
        ):
            both = {"transformer": serving.transformer_pid, "predictor": serving.predictor_pid}
            twos, ones, report["ratios"] = compare(
                lambda: scenario(
                    "canvas PNG (the app), two hops", t_url, *canvas, args.seconds, work, both
                ),
                lambda: scenario(
                    "canvas PNG, one-hop baseline",
                    o_url,
                    *canvas,
                    args.seconds,
                    work,
                    {"onehop": onehop.pid},
                ),
                max(1, args.rounds),
            )
            report["canvas"], report["onehop"] = twos[0], ones[0]
            if len(twos) > 1:
                pairs = zip(twos[1:], ones[1:], strict=True)
                report["repeats"] = [{"canvas": two, "onehop": one} for two, one in pairs]
            r = report["ratios"]
            print(
                f"two hops / one-hop baseline (median of {len(twos)} rounds): p50 at c1 "
                f"{r['p50_c1']:.2f}x, req/s at c16 {r['rps_c16']:.2f}x, CPU per request "
                f"{r['cpu_ms_per_request']:.2f}x",
                flush=True,
            )
            if glyph:
                report["glyph"] = scenario(
                    "scanned glyph PNG", t_url, *glyph, args.seconds, work, both
                )
            tensor = np.zeros((1, *INPUT_SHAPE), np.float32).tobytes()
            body = v2_binary(INPUT, "FP32", [1, *INPUT_SHAPE], tensor, binary_out=True)
            only = {"predictor": serving.predictor_pid}
            report["predictor"] = scenario(
                "predictor only, 1 tensor", p_url, *body, args.seconds, work, only
            )
            if args.batch_sizes:
                sizes = [int(s) for s in args.batch_sizes.split(",")]
                report["predictor_batches"] = batches(p_url, sizes, max(3, args.seconds // 2), work)
        if args.compare_hop:
            with running(ports, model_args, "v2", quiet=True) as serving:
                both = {"transformer": serving.transformer_pid, "predictor": serving.predictor_pid}
                report["canvas_rest_hop"] = scenario(
                    "canvas PNG, REST hop", t_url, *canvas, args.seconds, work, both
                )
    report["machine"]["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    report["machine"]["cpu_steal_percent"] = steal_percent(counters, cpu_times())
    main_run = report["canvas"]
    report["meets_goals"] = {
        "p50": main_run["c1"]["p50_ms"] <= GOALS["p50_ms"],
        "p99": main_run["c1"]["p99_ms"] <= GOALS["p99_ms"],
        "rps_c16": main_run["c16"]["rps"] >= GOALS["rps_c16"],
        "no_errors": main_run["c16"]["errors"] + main_run["c16"]["non2xx"] == 0,
        "p50_ratio": report["ratios"]["p50_c1"] <= GOALS["ratio_p50_c1"],
        "rps_ratio": report["ratios"]["rps_c16"] >= GOALS["ratio_rps_c16"],
    }
    out = write_report(args.out, report)
    m = report["machine"]
    print(
        f"bench: figures in {out} ({m['cpu_model']}, {m['cpus']} CPUs, load "
        f"{m['load_avg_1m_before']} -> {m['load_avg_1m_after']}, CPU steal "
        f"{m['cpu_steal_percent']}%); goals met: {report['meets_goals']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
