"""`python -m model`: serve the bukva CNN as a KServe v2 predictor (REST and gRPC).

Accepts every `kserve.ModelServer` flag (--http_port, --grpc_port, --workers, ...) plus the
model source and the CPU settings below. Exits with status 2 and a message naming the source
when the model cannot be loaded, so a crash-looping pod says why in its first log line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_TORCH_THREADS = 1
KSERVE_MOUNT = "/mnt/models"  # where KServe's storage-initializer puts STORAGE_URI


def build_parser() -> argparse.ArgumentParser:
    """KServe's server flags plus the predictor's own."""
    from kserve import model_server

    parser = argparse.ArgumentParser(
        prog="python -m model",
        parents=[model_server.parser],
        description="bukva predictor: v2 tensor in, label and uppercase logits out.",
    )
    parser.set_defaults(model_name="bukva")
    parser.add_argument(
        "--model_dir",
        default=None,
        help="Local model folder (KServe storage-initializer mount, e.g. /mnt/models). "
        "Wins over --model_uri.",
    )
    parser.add_argument(
        "--model_uri",
        default=None,
        help="Model to download at start-up: models:/bukva-cnn@champion, runs:/..., s3://... "
        "Default: STORAGE_URI, else BUKVA_MODEL_URI, else models:/bukva-cnn@champion.",
    )
    parser.add_argument(
        "--max_batch_size",
        type=int,
        default=256,
        help="Largest N accepted in one request; larger batches get HTTP 400.",
    )
    parser.add_argument(
        "--torch_threads",
        type=int,
        default=DEFAULT_TORCH_THREADS,
        help="torch intra-op threads per worker. 1 suits serving many small requests: "
        "concurrency comes from requests, not from splitting one tiny forward pass.",
    )
    parser.add_argument(
        "--optimize",
        default=True,
        type=lambda v: v.lower() in ("1", "true", "yes"),
        help="Serve the TorchScript-optimised network (folded batch norm, oneDNN kernels); "
        "false serves eager PyTorch.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags, load the model (or exit 2 naming it), then serve until signalled."""
    args = build_parser().parse_args(argv)

    import torch

    from bukva.settings import Settings
    from model.predictor import BukvaPredictor
    from model.server import PredictorServer
    from model.source import ModelSourceError, resolve

    torch.set_num_threads(max(1, args.torch_threads))
    torch.set_num_interop_threads(1)
    settings = Settings.from_env()
    uri = args.model_dir or args.model_uri or settings.model_uri
    if (
        not (args.model_dir or args.model_uri)
        and settings.storage_uri
        and Path(KSERVE_MOUNT).is_dir()
    ):
        uri = KSERVE_MOUNT  # KServe's storage-initializer already fetched STORAGE_URI
    try:
        folder = resolve(uri, settings.tracking_uri)
        predictor = BukvaPredictor(args.model_name, folder, args.max_batch_size, args.optimize)
        predictor.load()
    except ModelSourceError as exc:
        print(f"bukva predictor: cannot load model from {uri}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # unreadable files: safetensors, JSON and torch errors vary
        print(
            f"bukva predictor: cannot load model from {uri}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 2

    server = PredictorServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc,
        enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    server.start([predictor])
    return 0


if __name__ == "__main__":
    sys.exit(main())
