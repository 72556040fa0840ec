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

from bukva.contract import NUM_CLASSES

DEFAULT_TIMEOUT_S = 3


def switch(value: str) -> bool:
    """An on/off flag's value: 1, true or yes (any case) is on, anything else off."""
    return value.lower() in ("1", "true", "yes")


def build_parser() -> argparse.ArgumentParser:
    """KServe's server and transformer flags plus the transformer's own."""
    from bukva.preprocess import DecodeLimits
    from bukva.serving import server_parser
    from transformer.images import InputLimits

    limits = DecodeLimits()
    parser = server_parser(
        "python -m transformer",
        "bukva transformer: PNG/JPEG or canvas RGBA in, top-k characters out.",
    )
    parser.set_defaults(
        predictor_protocol="v2",
        predictor_request_timeout_seconds=DEFAULT_TIMEOUT_S,
    )
    switches = {  # on unless given 0/false/no
        "--coalesce": "Requests arriving while a predictor call is in flight share the next call "
        "(transformer/batching.py); false: one predictor call per request.",
        "--warm_up": "Before the REST port opens, send one drawing through decoding, "
        "normalisation and the predictor (at most 5 s), so that the first request costs what "
        "later ones do.",
    }
    for flag, help_text in switches.items():
        parser.add_argument(flag, default=True, type=switch, help=help_text)
    parser.add_argument(
        "--top_k",
        type=int,
        default=3,
        help=f"Characters returned per image (1-{NUM_CLASSES}).",
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
    parser.add_argument(
        "--max_request_pixels",
        type=int,
        default=InputLimits().max_request_pixels,
        help="Most pixels the images of one request may hold together (more: HTTP 400, "
        "checked from the image headers before decoding).",
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
    from bukva.serving import StrictDataPlane, serve
    from transformer.batching import Coalescing
    from transformer.client import make_client
    from transformer.images import InputLimits
    from transformer.model import BukvaTransformer

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
        if args.coalesce:
            client = Coalescing(client)
        limits = InputLimits(
            max_batch=args.max_batch_size,
            decode=DecodeLimits(max_bytes=args.max_image_bytes, max_pixels=args.max_image_pixels),
            max_request_bytes=args.max_request_bytes,
            max_request_pixels=args.max_request_pixels,
        )
        transformer = BukvaTransformer(args.model_name, client, top_k=args.top_k, limits=limits)
    except ValueError as exc:
        print(f"bukva transformer: {exc}", file=sys.stderr)
        return 2

    from kserve import model_server

    from bukva.serving import before_serving

    # The first request's costs are paid before the REST port opens (uvicorn runs the
    # lifespan start-up first): the app's first answer is as fast as the next ones.
    if args.warm_up:
        before_serving(model_server.app, transformer.warm_up)
    serve(
        [transformer],
        args,
        StrictDataPlane,
        predictor_config=PredictorConfig(
            predictor_host=host,
            predictor_protocol=protocol,
            predictor_use_ssl=args.predictor_use_ssl,
            predictor_request_timeout_seconds=args.predictor_request_timeout_seconds,
            predictor_health_check=args.enable_predictor_health_check,
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
