"""KServe DataPlanes of the two servers: their REST decoders, the served version in the v2
metadata and, for the transformer, JSON answers encoded once.

`kserve.ModelServer` takes no DataPlane: it builds its own in `__init__` and hands
`self.dataplane` to its REST and gRPC servers in `start()`, so `bukva.serving.start.serve`
replaces that attribute between the two.
https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/model_server.py
"""

from __future__ import annotations

import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.protocol.dataplane import DataPlane

from bukva.serving.rest import fast_fp32_request, parse_rest_request


class VersionedDataPlane(DataPlane):
    """KServe's DataPlane whose model metadata names the served version (v2 `versions`), from
    the model's `served_versions()` when it has one.

    KServe leaves `versions` out ("TODO: model versioning is not supported yet" in
    `DataPlane.model_metadata`; https://github.com/kserve/kserve/issues/2358,
    https://github.com/kserve/kserve/issues/4655). Its gRPC ModelMetadata drops the field
    whatever the DataPlane says, so this reaches REST only.
    """

    async def model_metadata(self, model_name: str) -> dict:
        metadata = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        served = getattr(model, "served_versions", None)
        versions = [v for v in (await served() if served else []) if v]
        return metadata | ({"versions": versions} if versions else {})


class StrictDataPlane(VersionedDataPlane):
    """The transformer's DataPlane: `parse_rest_request` for every raw REST body, and JSON
    answers encoded once, by orjson.

    KServe's v2 infer endpoint validates a JSON answer into its pydantic InferenceResponse and
    FastAPI then walks it again with `jsonable_encoder` (~0.2 ms a request, a tenth of the
    transformer's CPU); as bytes the answer takes the binary answers' path instead
    (`V2Endpoints.infer`,
    https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/protocol/rest/v2_endpoints.py).
    """

    def decode_inference_request(self, body, headers, model_name):
        if isinstance(body, bytes):
            json_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
            return parse_rest_request(body, json_length, model_name)
        return super().decode_inference_request(body, headers, model_name)

    def encode(self, model_name, response, headers, req_attributes):
        body, response_headers = super().encode(model_name, response, headers, req_attributes)
        if isinstance(body, dict) and "content-type" not in response_headers:
            data = orjson.dumps(body)
            # KServe's endpoint drops the lowercase "content-type"/"content-length" it finds
            # here (they suit a binary answer); these spellings reach the HTTP answer.
            json_headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
            return data, response_headers | json_headers
        return body, response_headers


class FastTensorDataPlane(VersionedDataPlane):
    """The predictor's DataPlane: `fast_fp32_request` tried first for raw REST bodies."""

    def decode_inference_request(self, body, headers, model_name):
        if isinstance(body, bytes):
            json_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
            request = fast_fp32_request(body, json_length, model_name)
            if request is not None:
                return request
        return super().decode_inference_request(body, headers, model_name)
