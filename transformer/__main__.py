"""`python -m transformer`: serve the bukva transformer (KServe v2, REST and gRPC).

Accepts every `kserve.ModelServer` flag. Of KServe's transformer flags, --predictor_host,
--predictor_protocol (v2 or grpc-v2; the older --protocol flag is ignored),
--predictor_use_ssl, --predictor_request_timeout_seconds and --enable_predictor_health_check
apply. Two defaults differ from KServe's: the protocol is v2 (not v1) and the predictor timeout
is 3 s (not 600 s), so a dead predictor costs a client seconds, not minutes.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_TIMEOUT_S = 3


def build_parser() -> argparse.ArgumentParser:
    """KServe's server and transformer flags plus the transformer's own."""
    from kserve import model_server

    from bukva.preprocess import DecodeLimits

    limits = DecodeLimits()
    parser = argparse.ArgumentParser(
        prog="python -m transformer",
        parents=[model_server.parser],
        description="bukva transformer: PNG/JPEG or canvas RGBA in, top-k characters out.",
    )
    parser.set_defaults(
        model_name="bukva",
        predictor_protocol="v2",
        predictor_request_timeout_seconds=DEFAULT_TIMEOUT_S,
    )
    parser.add_argument(
        "--top_k", type=int, default=3, help="Characters returned per image (1-43)."
    )
    parser.add_argument(
        "--max_batch_size",
        type=int,
        default=64,
        help="Most images in one request (more: HTTP 400).",
    )
    parser.add_argument(
        "--max_image_bytes",
        type=int,
        default=limits.max_bytes,
        help="Largest encoded image accepted.",
    )
    parser.add_argument(
        "--max_image_pixels",
        type=int,
        default=limits.max_pixels,
        help="Largest width*height accepted (decompression-bomb guard, checked before decoding).",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the transformer and serve until signalled."""
    args = build_parser().parse_args(argv)
    if not args.predictor_host:
        print(
            "bukva transformer: --predictor_host is required (e.g. 127.0.0.1:8090)", file=sys.stderr
        )
        return 2

    from kserve.predictor_config import PredictorConfig

    from bukva.preprocess import DecodeLimits
    from transformer.client import make_client
    from transformer.images import InputLimits
    from transformer.model import BukvaTransformer
    from transformer.v2 import V2ModelServer

    host, protocol = args.predictor_host, args.predictor_protocol
    if protocol == "grpc-v2" and args.predictor_use_ssl:
        print("bukva transformer: TLS to a gRPC predictor is not supported", file=sys.stderr)
        return 2
    try:
        client = make_client(
            protocol,
            host,
            args.model_name,
            args.predictor_request_timeout_seconds,
            args.predictor_use_ssl,
        )
        limits = InputLimits(
            max_batch=args.max_batch_size,
            decode=DecodeLimits(max_bytes=args.max_image_bytes, max_pixels=args.max_image_pixels),
        )
        transformer = BukvaTransformer(args.model_name, client, top_k=args.top_k, limits=limits)
    except ValueError as exc:
        print(f"bukva transformer: {exc}", file=sys.stderr)
        return 2

    server = V2ModelServer(
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
        predictor_config=PredictorConfig(
            predictor_host=host,
            predictor_protocol=protocol,
            predictor_use_ssl=args.predictor_use_ssl,
            predictor_request_timeout_seconds=args.predictor_request_timeout_seconds,
            predictor_health_check=args.enable_predictor_health_check,
        ),
    )
    server.start([transformer])
    return 0


if __name__ == "__main__":
    sys.exit(main())
