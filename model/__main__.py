"""`python -m model`: serve the bukva CNN as a KServe v2 predictor (REST and gRPC).

Accepts every `kserve.ModelServer` flag (--http_port, --grpc_port, --workers, ...) plus the
model source and the CPU settings below. Exits with status 2 and a message naming the source
when the model cannot be loaded, so a crash-looping pod says why in its first log line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bukva.registry import CHAMPION_URI
from model.runtime import RUNTIMES

DEFAULT_THREADS = 1
KSERVE_MOUNT = "/mnt/models"  # where KServe's storage-initializer puts STORAGE_URI


def build_parser() -> argparse.ArgumentParser:
    """KServe's server flags plus the predictor's own."""
    from bukva.serving import server_parser

    parser = server_parser(
        "python -m model", "bukva predictor: v2 tensor in, label and uppercase logits out."
    )
    parser.add_argument(
        "--model_dir",
        default=None,
        help="Local model folder (KServe storage-initializer mount, e.g. /mnt/models). "
        "Wins over --model_uri.",
    )
    parser.add_argument(
        "--model_uri",
        default=None,
        help=f"Model to download at start-up: {CHAMPION_URI}, runs:/..., s3://... "
        f"Default: STORAGE_URI, else BUKVA_MODEL_URI, else {CHAMPION_URI}.",
    )
    parser.add_argument(
        "--model_version",
        default="",
        help="The registry version the model source holds, as the deployment declares it "
        "(the Helm chart's predictor.modelVersion): reported in every answer, the metadata and "
        "the metrics. Default: the version a models:/ URI names or its alias points at; "
        "otherwise sha256:<12 hex> of the weights.",
    )
    parser.add_argument(
        "--max_batch_size",
        type=int,
        default=256,
        help="Largest N accepted in one request; larger batches get HTTP 400.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="Intra-op threads of the runtime. 1 suits serving many small requests: "
        "concurrency comes from requests, not from splitting one tiny forward pass.",
    )
    parser.add_argument(
        "--runtime",
        default="onnx",
        choices=RUNTIMES,
        help="onnx: ONNX Runtime on the registered model.onnx (exported at load if missing; "
        "no torch needed otherwise); torch: eager PyTorch on the safetensors.",
    )
    return parser


def model_uri(args: argparse.Namespace, storage_uri: str, default: str) -> str:
    """The flag's folder or URI; else KServe's storage-initializer mount when STORAGE_URI is set
    and mounted; else `default` (STORAGE_URI or BUKVA_MODEL_URI)."""
    if args.model_dir or args.model_uri:
        return args.model_dir or args.model_uri
    if storage_uri and Path(KSERVE_MOUNT).is_dir():
        return KSERVE_MOUNT  # KServe's storage-initializer already fetched STORAGE_URI
    return default


def main(argv: list[str] | None = None) -> int:
    """Parse flags, load the model (or exit 2 naming it), then serve until signalled."""
    args = build_parser().parse_args(argv)

    from bukva.serving import FastTensorDataPlane, serve
    from bukva.settings import Settings, SettingsError
    from model.model import BukvaPredictor
    from model.source import ModelSourceError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"bukva predictor: {exc}", file=sys.stderr)
        return 2
    uri = model_uri(args, settings.storage_uri, settings.model_uri)
    predictor = BukvaPredictor(
        args.model_name,
        uri,
        args.max_batch_size,
        args.runtime,
        settings.tracking_uri,
        max(1, args.threads),
        args.model_version,
    )
    try:
        predictor.load()
    except ModelSourceError as exc:
        print(f"bukva predictor: cannot load model from {uri}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # unreadable files: safetensors, JSON, ONNX and torch errors vary
        print(
            f"bukva predictor: cannot load model from {uri}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 2
    serve([predictor], args, FastTensorDataPlane)
    return 0


if __name__ == "__main__":
    sys.exit(main())
