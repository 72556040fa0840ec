"""Every rendered object and overlay build validated offline against the target version's
Kubernetes JSON schemas (strict: unknown fields fail), and the InferenceService against the
KServe CRD schema of the pinned version (k8s/versions.env), vendored in k8s/schemas/ (made
strict the same way)."""

from __future__ import annotations

import copy
import functools
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_support import ROOT, Case, cases, render, versions
from kubernetes_validate.utils import all_versions

pytestmark = pytest.mark.k8s

# Vendored with its licence (k8s/schemas/kserve-<version>/README.md): no checkout needs more.
KSERVE_CRD = (
    ROOT
    / "k8s"
    / "schemas"
    / f"kserve-{versions()['KSERVE_VERSION']}"
    / "serving.kserve.io_inferenceservices.yaml"
)
CRD_KINDS = {"InferenceService"}


def k8s_version() -> str:
    return versions()["K8S_SCHEMA_VERSION"]


def _strict(schema: Any) -> Any:
    """Close every object schema that lists its properties (as `kubectl --validate=strict`)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def isvc_validator() -> jsonschema.protocols.Validator:
    if not KSERVE_CRD.is_file():
        pytest.fail(f"KServe CRD schema missing: {KSERVE_CRD}")
    crd = yaml.safe_load(KSERVE_CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is checked by the API server
    return jsonschema.Draft7Validator(schema)


# Traefik's Middleware CRD schema is not vendored: its fields the app chart writes are checked
# here by hand (the names and types of Traefik v3's `traefik.io/v1alpha1` Middleware, spec
# `buffering`); the API server checks the rest on a real cluster.
MIDDLEWARE_BUFFERING = {
    "maxRequestBodyBytes": int,
    "memRequestBodyBytes": int,
    "maxResponseBodyBytes": int,
    "memResponseBodyBytes": int,
    "retryExpression": str,
}


def validate_middleware(obj: dict) -> None:
    """The Traefik Middleware the app chart renders: a buffering limit and nothing else."""
    if obj["apiVersion"] != "traefik.io/v1alpha1":
        raise jsonschema.ValidationError(f"apiVersion {obj['apiVersion']}: not traefik.io/v1alpha1")
    unknown = set(obj) - {"apiVersion", "kind", "metadata", "spec"}
    if unknown:
        raise jsonschema.ValidationError(f"unknown fields {sorted(unknown)}")
    if list(obj["spec"]) != ["buffering"]:
        raise jsonschema.ValidationError(f"spec: {sorted(obj['spec'])}, expected buffering only")
    for key, value in obj["spec"]["buffering"].items():
        kind = MIDDLEWARE_BUFFERING.get(key)
        if kind is None or not isinstance(value, kind) or isinstance(value, bool):
            raise jsonschema.ValidationError(f"spec.buffering.{key}: {value!r}")
        if kind is int and not 0 <= value < 2**63:
            raise jsonschema.ValidationError(f"spec.buffering.{key}: {value} is not an int64 >= 0")


def validate(obj: dict) -> None:
    """Raise if `obj` does not satisfy its schema (Kubernetes, KServe CRD, or the hand check of
    Traefik's Middleware)."""
    if obj["kind"] == "Middleware":
        validate_middleware(obj)
        return
    if obj["kind"] in CRD_KINDS:
        assert obj["apiVersion"] == "serving.kserve.io/v1beta1"
        errors = sorted(isvc_validator().iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            raise jsonschema.ValidationError(
                "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
            )
        return
    kubernetes_validate.validate(obj, k8s_version(), strict=True)


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_every_object_validates(case: Case) -> None:
    objects = case.objects()
    assert objects, f"{case.name} rendered nothing"
    failures = []
    for obj in objects:
        try:
            validate(obj)
        except Exception as exc:  # collect them all, report together
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    assert not failures, "\n".join(failures)


def test_target_version_is_one_kserve_supports_and_schemas_exist() -> None:
    major, minor, *_ = (int(p) for p in k8s_version().split("."))
    assert (major, minor) >= (1, 32), "KServe v0.20 needs Kubernetes >= 1.32"
    assert f"{major}.{minor}" in {v.rsplit(".", 1)[0] for v in all_versions()}
    assert (
        versions()["KIND_NODE_IMAGE"].endswith(f"v{major}.{minor}.0")
        or f"v{major}.{minor}." in versions()["KIND_NODE_IMAGE"]
    )
    assert f"v{major}.{minor}." in versions()["K3S_IMAGE"]


def _find(objects: list[dict], kind: str) -> dict:
    return copy.deepcopy(next(o for o in objects if o["kind"] == kind))


def test_validator_rejects_a_broken_deployment() -> None:
    dep = _find(render("bukva"), "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(Exception, match=r"paht|Additional properties"):
        validate(dep)
    dep = _find(render("bukva"), "Deployment")
    dep["spec"]["replicas"] = "one"
    with pytest.raises(Exception, match="one"):
        validate(dep)


def test_validator_rejects_a_broken_inference_service() -> None:
    isvc = _find(render("bukva"), "InferenceService")
    validate(isvc)
    isvc["spec"]["predictor"]["minReplica"] = 1  # typo of minReplicas
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate(isvc)
    isvc = _find(render("bukva"), "InferenceService")
    isvc["spec"]["predictor"]["scaleMetric"] = "gpu"
    with pytest.raises(jsonschema.ValidationError, match="gpu"):
        validate(isvc)


def test_validator_rejects_a_broken_middleware() -> None:
    [middleware] = [o for o in render("bukva", ("values-kind.yaml",)) if o["kind"] == "Middleware"]
    validate(middleware)
    for spec, match in (
        ({"buffering": {"maxRequestBodyBytes": "2Mi"}}, "maxRequestBodyBytes"),
        ({"buffering": {"maxRequestBodySize": 1}}, "maxRequestBodySize"),
        ({"buffering": {"maxRequestBodyBytes": -1}}, "int64"),
        ({"buffering": {}, "rateLimit": {}}, "buffering only"),
    ):
        with pytest.raises(jsonschema.ValidationError, match=match):
            validate({**middleware, "spec": spec})
