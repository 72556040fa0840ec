"""NetworkPolicies: every connection the manifests configure is admitted, and nothing else
reaches the registry, the object store, the database or the predictor.

The policies are evaluated here as Kubernetes defines them (a pod selected by a policy admits
only what one of its rules lists: ports, and peers by pod labels in the namespace or by
namespace), over the pods of one install (platform + app + training Jobs), each with the
labels it runs with (KServe's components: the labels their spec gives). The connections come
from the manifests themselves: every in-cluster address a container names (test_wiring's
`_references`), every Ingress backend (from the ingress controller's namespace) and every
Prometheus scrape target. Whether the CNI enforces them is for a real cluster to show
(docs/kubernetes.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from k8s_support import ROOT, containers, environments, pod_specs
from test_wiring import ENVS, _references

pytestmark = pytest.mark.k8s

INGRESS_NAMESPACES = {"kind": "traefik", "k3d": "kube-system"}
NAMESPACE = "bukva"


@dataclass(frozen=True)
class Pod:
    owner: str
    labels: dict
    ports: dict  # container port name -> number
    namespace: str = NAMESPACE

    @property
    def component(self) -> str:
        return self.labels.get("app.kubernetes.io/component", "")


def _pods(objects: list[dict]) -> list[Pod]:
    out = []
    for p in pod_specs(objects):
        ports = {}
        for c in containers(p.spec, init=False):
            for port in c.get("ports", []):
                ports[port.get("name", str(port["containerPort"]))] = port["containerPort"]
        out.append(Pod(p.owner, dict(p.labels), ports))
    return out


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_admits(peer: dict, source: Pod) -> bool:
    if "namespaceSelector" in peer:
        exprs = peer["namespaceSelector"].get("matchExpressions", [])
        ns_ok = all(
            e["key"] == "kubernetes.io/metadata.name"
            and e["operator"] == "In"
            and source.namespace in e["values"]
            for e in exprs
        )
        return ns_ok and _matches(peer.get("podSelector", {}), source.labels)
    return source.namespace == NAMESPACE and _matches(peer.get("podSelector", {}), source.labels)


def admits(policies: list[dict], target: Pod, port: int, source: Pod) -> bool:
    """Whether `source` may open a TCP connection to `target`'s container port `port`."""
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], target.labels)]
    if not selecting:
        return True  # a pod no policy selects is not isolated
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports is not None and not any(
                target.ports.get(str(p["port"]), p["port"]) == port for p in ports
            ):
                continue
            peers = rule.get("from")
            if peers is None or any(_peer_admits(peer, source) for peer in peers):
                return True
    return False


def _connections(objects: list[dict], pods: list[Pod]) -> list[tuple[Pod, Pod, int, str]]:
    """(source, target, container port, why) for every connection the manifests configure."""
    by_owner = {p.owner: p for p in pods}
    services = {}
    for svc in (o for o in objects if o["kind"] == "Service"):
        [target] = [
            p
            for p in pods
            if p.owner.startswith(("Deployment/", "StatefulSet/"))
            and _matches({"matchLabels": svc["spec"]["selector"]}, p.labels)
        ]
        services[svc["metadata"]["name"]] = (target, svc["spec"]["ports"])
    for isvc in (o for o in objects if o["kind"] == "InferenceService"):
        for comp in ("predictor", "transformer"):
            target = by_owner[f"InferenceService/{isvc['metadata']['name']}/{comp}"]
            [http] = [v for k, v in target.ports.items() if k == "http1"]
            services[f"{isvc['metadata']['name']}-{comp}"] = (
                target,
                [{"port": 80, "targetPort": http}],
            )

    def resolve(name: str, port: int) -> tuple[Pod, int]:
        target, ports = services[name]
        [sp] = [p for p in ports if p["port"] == port]
        tp = sp.get("targetPort", port)
        return target, target.ports.get(tp, tp) if isinstance(tp, str) else tp

    out = []
    for who, host, port in _references(objects):
        name = host.split(".")[0]
        if name not in services:
            continue
        source = by_owner[who.rsplit("/", 1)[0]]
        target, tport = resolve(name, port)
        out.append((source, target, tport, f"{who} -> {host}:{port}"))
    for env, ns in INGRESS_NAMESPACES.items():
        controller = Pod(
            f"ingress controller ({env})", {"app.kubernetes.io/name": "traefik"}, {}, ns
        )
        for ing in (o for o in objects if o["kind"] == "Ingress"):
            for rule in ing["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    b = path["backend"]["service"]
                    target, ports = services[b["name"]]
                    if "number" in b["port"]:
                        _, tport = resolve(b["name"], b["port"]["number"])
                    else:
                        [sp] = [p for p in ports if p.get("name") == b["port"]["name"]]
                        _, tport = resolve(b["name"], sp["port"])
                    out.append((controller, target, tport, f"ingress {rule['host']}"))
    [prometheus] = [p for p in pods if p.component == "prometheus"]
    for spec in pod_specs(objects):
        if spec.annotations.get("prometheus.io/scrape") == "true":
            port = int(spec.annotations["prometheus.io/port"])
            out.append((prometheus, by_owner[spec.owner], port, f"scrape {spec.owner}"))
    return out


def _setup(env: str) -> tuple[list[dict], list[Pod], list[dict]]:
    objects = environments()[env]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    return objects, _pods(objects), policies


def _unused(source: Pod, target: Pod) -> bool:
    """The training Jobs take the whole endpoints ConfigMap (envFrom), Prometheus' URL too,
    but no pipeline stage reads it."""
    if (source.component, target.component) != ("training", "prometheus"):
        return False
    readers = [p for p in (ROOT / "pipelines").rglob("*.py") if "prometheus" in p.read_text()]
    assert not readers, f"{readers} read Prometheus: admit the Jobs"
    return True


@pytest.mark.parametrize("env", ENVS)
def test_every_configured_connection_is_admitted(env: str) -> None:
    objects, pods, policies = _setup(env)
    assert policies
    connections = [c for c in _connections(objects, pods) if not _unused(c[0], c[1])]
    assert any(s.component == "mlflow" and t.component == "postgres" for s, t, _, _ in connections)
    blocked = [why for s, t, port, why in connections if not admits(policies, t, port, s)]
    assert not blocked, "configured but not admitted:\n" + "\n".join(blocked)


@pytest.mark.parametrize("env", ENVS)
def test_only_their_clients_reach_the_registry_the_store_the_database_and_the_predictor(
    env: str,
) -> None:
    _, pods, policies = _setup(env)
    by_component = {p.component: p for p in pods}
    allowed = {  # (target component, its port): the components that may connect to it
        ("postgres", "postgres"): {"mlflow"},
        ("mlflow", "http"): {"predictor", "frontend", "training", "test"},
        ("minio", "s3"): {
            "mlflow",
            "frontend",
            "training",
            "bucket-init",
            "s3-users",
            "test",
            "prometheus",
        },
        ("minio", "console"): set(),  # the ingress controller only
        ("predictor", "http1"): {"transformer", "prometheus"},
        ("prometheus", "http"): {"frontend", "test"},
    }
    outsider = Pod("a pod of another app", {"app": "other"}, {})
    for (target_name, port_name), clients in allowed.items():
        target = by_component[target_name]
        port = target.ports[port_name]
        if True:
            for source in [*pods, outsider]:
                ok = admits(policies, target, port, source)
                assert ok == (source.component in clients), (
                    f"{source.owner} -> {target_name}:{port}: admitted={ok}"
                )


@pytest.mark.parametrize("env", ENVS)
def test_every_served_pod_is_isolated(env: str) -> None:
    """Every pod that listens is selected by a policy (else it admits everyone)."""
    _, pods, policies = _setup(env)
    for pod in pods:
        if pod.ports and not pod.owner.startswith(("Job/", "Pod/")):
            assert any(_matches(p["spec"]["podSelector"], pod.labels) for p in policies), pod.owner


def test_a_rule_without_peers_is_left_out_not_open() -> None:
    """A rule whose `from` is empty would admit every source; the library leaves it out."""
    from k8s_support import render

    app = render("bukva", ("values-kind.yaml",), ("ingress.enabled=false",))
    [frontend] = [
        o
        for o in app
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-frontend")
    ]
    for rule in frontend["spec"]["ingress"] or []:
        assert rule.get("from"), rule
    pod = Pod(
        "x",
        {
            "app.kubernetes.io/component": "frontend",
            **frontend["spec"]["podSelector"]["matchLabels"],
        },
        {"http": 8501},
    )
    assert not admits([frontend], pod, 8501, Pod("other", {"app": "other"}, {}))
