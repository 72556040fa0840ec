"""The cluster scripts run end to end against stand-ins (tests/k8s/standins.py) for docker,
kind, k3d, kubectl and helm: no cluster runs here, so these prove what the scripts do, in which
order and with which arguments, and how they fail; a real cluster proves the rest
(docs/kubernetes.md says what and how)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from k8s_support import ROOT, make_images, versions
from standins import Machine, Run, bukva_images, healthy, rerun, rule

pytestmark = pytest.mark.k8s

UP = ["bash", "scripts/cluster-up.sh"]
TRAIN = ["bash", "scripts/cluster-train.sh"]
DOWN = ["bash", "scripts/cluster-down.sh"]
TAG = "0123456789ab-dirty-cafe0042"
REGISTRY = f"localhost:{versions()['REGISTRY_PORT']}"


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def _up(machine: Machine, tool: str = "kind", rules: list[dict] | None = None, **env: str) -> Run:
    run = machine.run(UP, rules or healthy(), {"CLUSTER_TOOL": tool, "IMAGE_TAG": TAG, **env})
    return run


def _ok(run: Run) -> Run:
    assert run.rc == 0, run.stdout[-2000:] + run.stderr[-3000:] + "\n" + run.transcript()
    return run


@pytest.mark.parametrize("cluster_tool", ["kind", "k3d"])
def test_cluster_up_runs_every_step_in_order(machine: Machine, cluster_tool: str) -> None:
    run = _ok(_up(machine, cluster_tool))
    kind = cluster_tool == "kind"
    network = "kind" if kind else "k3d-bukva"
    expected = [  # (tool, what its call matches), in the order they must run
        ("docker", r"^info"),
        ("docker", rf"^run -d .*--name bukva-registry -p 127\.0\.0\.1:{REGISTRY[10:]}:5000"),
        ("kind", r"^create cluster --name bukva ")
        if kind
        else ("k3d", r"^cluster create bukva --config k8s/k3d-config.yaml"),
        ("docker", rf"^network connect {network} bukva-registry"),
        ("helm", r"^upgrade --install cert-manager "),
        ("helm", r"^upgrade --install traefik ")
        if kind
        else ("kubectl", r"rollout status deployment/traefik"),
        ("helm", r"^upgrade --install kserve-crd "),
        ("helm", r"^upgrade --install kserve "),
        ("docker", r"^build "),
        ("docker", r"^push "),
        ("helm", r"^upgrade --install bukva-platform "),
        ("kubectl", r"apply -f -"),
        ("kubectl", r"get job bukva-data "),
        ("kubectl", r"patch job bukva-train .*suspend\":false"),
        ("kubectl", r"get job bukva-train "),
        ("helm", r"^upgrade --install bukva charts/bukva "),
        ("kubectl", r"get deployment bukva-predictor -o jsonpath"),
        ("kubectl", r"rollout status deployment/bukva-predictor"),
        ("kubectl", r"get --raw .*/services/bukva-predictor:80/proxy/v2/models/bukva"),
    ]
    steps = [run.first(tool, pattern) for tool, pattern in expected]
    assert steps == sorted(steps), run.transcript()
    if kind:  # kind's local-registry recipe on the node
        hosts = run.calls[run.first("docker", r"^exec -i node-control-plane cp /dev/stdin")]
        assert hosts.stdin == '[host."http://bukva-registry:5000"]\n'
        assert f"certs.d/{REGISTRY}/hosts.toml" in hosts.args[-1]
    else:
        assert not run.find("kind", "."), "k3d runs never call kind"
    assert not run.find("kubectl", r"rollout restart"), "KServe owns the predictor Deployment"
    assert f"images {TAG}, model version 3" in run.stdout


def test_one_tag_reaches_every_image_chart_and_job(machine: Machine) -> None:
    run = _ok(_up(machine))
    refs = {
        f"{REGISTRY}/bukva/{n}:{TAG}" for n in ("predictor", "transformer", "frontend", "trainer")
    }
    built = {c.args[c.args.index("-t") + 1] for c in run.calls if c.args[:1] == ["build"]}
    pushed = {c.args[-1] for c in run.calls if c.args[:1] == ["push"]}
    assert built == pushed == refs
    platform, app, jobs = run.helm_render("bukva-platform"), run.helm_render("bukva"), run.applied()
    assert bukva_images(platform) == {f"{REGISTRY}/bukva/trainer:{TAG}"}
    assert bukva_images(app) == refs - {f"{REGISTRY}/bukva/trainer:{TAG}"}
    assert [j["metadata"]["name"] for j in jobs if j["kind"] == "Job"] == [
        "bukva-data",
        "bukva-train",
    ]
    assert bukva_images(jobs) == {f"{REGISTRY}/bukva/trainer:{TAG}"}
    # Nothing pulls an image it was not pushed: every bukva image in every manifest is pushed.
    assert bukva_images(platform + app + jobs) <= pushed


def test_the_app_serves_the_version_training_promoted(machine: Machine) -> None:
    run = _ok(_up(machine, rules=healthy("version=7 promoted=true champion=7")))
    isvc = next(o for o in run.helm_render("bukva") if o["kind"] == "InferenceService")
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["BUKVA_MODEL_URI"] == "models:/bukva-cnn/7", "a declared version, not @champion"


def test_a_failed_job_stops_at_once_with_its_logs(machine: Machine) -> None:
    rules = [
        rule("kubectl", r"get job bukva-data -o jsonpath", "Failed "),
        rule("kubectl", r"logs job/bukva-data", "StageError: data source folder not found: /x\n"),
        *healthy(),
    ]
    start = time.monotonic()
    run = _up(machine, rules=rules, POLL_S="5")
    assert run.rc != 0
    assert time.monotonic() - start < 60, "no waiting out the timeout"
    assert "StageError: data source folder not found" in run.stderr
    assert "Job bukva-data failed" in run.stderr
    assert run.find("kubectl", r"describe job bukva-data")
    assert not run.find("kubectl", r"patch job bukva-train"), "train never starts"
    assert not run.find("helm", r"^upgrade --install bukva charts/bukva ")


def test_a_pod_that_cannot_pull_its_image_stops_the_wait(machine: Machine) -> None:
    """ImagePullBackOff never makes a Job Failed: the wait must look at the pods."""
    rules = [
        rule("kubectl", r"get job bukva-data -o jsonpath", ""),
        rule("kubectl", r"get pods -l batch.kubernetes.io/job-name=bukva-data", "ImagePullBackOff"),
        *healthy(),
    ]
    run = _up(machine, rules=rules, POLL_S="5")
    assert run.rc != 0
    assert "Job bukva-data cannot start its pod (ImagePullBackOff)" in run.stderr
    assert len(run.find("kubectl", r"get job bukva-data ")) == 1, "stopped at the first look"


def test_a_job_that_never_finishes_times_out_with_its_logs(machine: Machine) -> None:
    rules = [rule("kubectl", r"get job bukva-data -o jsonpath", ""), *healthy()]
    lib = (ROOT / "scripts" / "cluster-lib.sh").read_text()
    assert "wait_job bukva-data 3600" in lib
    # A shell with the library loaded and a 1 s deadline: the same function the scripts call.
    script = "source scripts/cluster-lib.sh; wait_job bukva-data 1"
    run = machine.run(["bash", "-c", script], rules, {"CLUSTER_TOOL": "kind", "POLL_S": "0.2"})
    assert run.rc != 0 and "did not finish in 1 s" in run.stderr
    assert run.find("kubectl", r"logs job/bukva-data")


def test_rerun_creates_nothing_twice_and_upgrades_the_rest(machine: Machine) -> None:
    run = _ok(_up(machine, rules=rerun()))
    assert not run.find("kind", r"^create"), "the cluster exists"
    assert not run.find("docker", r"^run "), "the registry runs"
    assert not run.find("docker", r"^network connect"), "the registry is on the network"
    for release in ("cert-manager", "traefik", "kserve-crd", "kserve", "bukva-platform", "bukva"):
        assert run.find("helm", rf"^upgrade --install {release} "), release
    delete, apply = run.first("kubectl", r"delete job -l"), run.first("kubectl", r"apply -f -")
    assert delete < apply, "old Jobs are replaced, not collided with"


def test_k3d_waits_for_traefik_to_exist_before_its_rollout(machine: Machine) -> None:
    rules = [rule("kubectl", r"get deployment/traefik", rc=1, stderr="NotFound", times=3)]
    run = _ok(_up(machine, "k3d", rules + healthy()))
    gets = run.find("kubectl", r"-n kube-system get deployment/traefik")
    assert len(gets) == 4, "three NotFound, then found"
    assert gets[-1] < run.first("kubectl", r"rollout status deployment/traefik")


def test_kserve_install_is_retried(machine: Machine) -> None:
    rules = [rule("helm", r"^upgrade --install kserve-crd ", rc=1, stderr="webhook x509", times=2)]
    run = _ok(_up(machine, rules=rules + healthy()))
    assert len(run.find("helm", r"^upgrade --install kserve-crd ")) == 3
    rules = [rule("helm", r"^upgrade --install kserve ", rc=1, stderr="webhook x509")]
    run = _up(machine, rules=rules + healthy())
    assert run.rc != 0 and "KServe did not install (3 attempts)" in run.stderr
    assert not run.find("docker", r"^build "), "stops before building anything"


@pytest.mark.parametrize("cluster_tool", ["kind", "k3d"])
def test_cluster_name_and_namespace_reach_every_call(machine: Machine, cluster_tool: str) -> None:
    run = _ok(_up(machine, cluster_tool, CLUSTER_NAME="lab", NAMESPACE="ml"))
    context = f"{cluster_tool}-lab"
    for c in run.calls:
        if c.tool == "kubectl" and c.args[:1] != ["version"]:
            assert c.args[:2] == ["--context", context], c.line
        if c.tool == "helm" and c.args[:1] == ["upgrade"]:
            assert c.args[c.args.index("--kube-context") + 1] == context, c.line
            if re.match(r"bukva", c.args[2]):
                assert c.args[c.args.index("-n") + 1] == "ml", c.line
    if cluster_tool == "kind":
        run.first("kind", r"^create cluster --name lab ")
        run.first("kind", r"^get nodes --name lab")
    else:
        run.first("k3d", r"^cluster create lab ")
        run.first("docker", r"^network connect k3d-lab bukva-registry")
    assert {j["metadata"]["namespace"] for j in run.applied()} == {"ml"}


def test_cluster_configs_carry_no_name_and_mirror_the_registry() -> None:
    v = versions()
    mirror = f"localhost:{v['REGISTRY_PORT']}"
    kind = yaml.safe_load((ROOT / "k8s" / "kind-config.yaml").read_text())
    k3d = yaml.safe_load((ROOT / "k8s" / "k3d-config.yaml").read_text())
    assert "name" not in kind and "name" not in k3d.get("metadata", {}), "CLUSTER_NAME decides"
    assert 'config_path = "/etc/containerd/certs.d"' in kind["containerdConfigPatches"][0]
    mirrors = yaml.safe_load(k3d["registries"]["config"])["mirrors"]
    assert mirrors == {mirror: {"endpoint": [f"http://{v['REGISTRY_NAME']}:5000"]}}


def test_traefik_on_kind_can_roll_on_its_one_node() -> None:
    """Traefik holds a hostPort on the one node labelled ingress-ready: a surge pod can never
    be scheduled beside it, so its update strategy must replace the pod, not surge."""
    kind = yaml.safe_load((ROOT / "k8s" / "kind-config.yaml").read_text())
    values = yaml.safe_load((ROOT / "k8s" / "traefik-values.yaml").read_text())
    ingress_nodes = [n for n in kind["nodes"] if "ingress-ready" in str(n)]
    assert len(ingress_nodes) == 1
    assert values["nodeSelector"] == {"ingress-ready": "true"}
    assert any("hostPort" in p for p in values["ports"].values())
    rolling = values["updateStrategy"]["rollingUpdate"]
    assert values["updateStrategy"]["type"] == "RollingUpdate"
    assert rolling["maxSurge"] == 0 and rolling["maxUnavailable"] >= 1


def test_train_job_promotes_with_a_helm_upgrade(machine: Machine) -> None:
    served = rule("kubectl", r"get inferenceservice bukva -o jsonpath", "models:/bukva-cnn/2")
    run = _ok(
        machine.run(
            TRAIN,
            [served, *healthy("version=3 promoted=true champion=3")],
            {"CLUSTER_TOOL": "kind", "IMAGE_TAG": TAG},
        )
    )
    built = [c.args[c.args.index("-t") + 1] for c in run.calls if c.args[:1] == ["build"]]
    assert built == [f"{REGISTRY}/bukva/trainer:{TAG}"], "the Jobs' image, built for this tree"
    assert run.first("docker", rf"^push -q {REGISTRY}/bukva/trainer:{TAG}") < run.first(
        "kubectl", r"apply -f -"
    )
    assert bukva_images(run.applied()) == {f"{REGISTRY}/bukva/trainer:{TAG}"}
    upgrade = run.calls[run.first("helm", r"^upgrade bukva charts/bukva ")]
    assert "--reuse-values" in upgrade.args
    assert upgrade.args[-2:] == ["--set-string", "predictor.modelVersion=3"]
    assert run.first("kubectl", r"rollout status deployment/bukva-predictor") > run.calls.index(
        upgrade
    )
    assert "promoted: the app serves version 3" in run.stdout
    assert not run.find("kubectl", r"rollout restart")
    # The gate kept the champion: nothing rolls.
    kept = [served, *healthy("version=4 promoted=false champion=2")]
    run = _ok(machine.run(TRAIN, kept, {"CLUSTER_TOOL": "kind", "IMAGE_TAG": TAG}))
    assert not run.find("helm", r"^upgrade "), run.transcript()
    assert "already serves version 2" in run.stdout


def _promote(machine: Machine, *rules: dict) -> Run:
    """make train-job where the app serves 2 and training promotes 3, with `rules` first."""
    served = rule("kubectl", r"get inferenceservice bukva -o jsonpath", "models:/bukva-cnn/2")
    scenario = [*rules, served, *healthy("version=3 promoted=true champion=3")]
    return machine.run(TRAIN, scenario, {"CLUSTER_TOOL": "kind", "IMAGE_TAG": TAG})


def test_a_promotion_waits_until_kserve_has_rolled_the_new_version(machine: Machine) -> None:
    """Right after `helm upgrade` the predictor Deployment still names the old version (KServe
    has not reconciled yet): a rollout status then would return at once, on the old pods."""
    old = rule("kubectl", r"get deployment bukva-predictor", "models:/bukva-cnn/2", times=3)
    run = _ok(_promote(machine, old))
    gets = run.find("kubectl", r"get deployment bukva-predictor -o jsonpath")
    assert len(gets) == 4, "three looks at the old version, then the new one"
    assert gets[-1] < run.first("kubectl", r"rollout status deployment/bukva-predictor")


def test_a_promotion_whose_new_pods_never_become_ready_fails(machine: Machine) -> None:
    """The new version does not load: the old pods keep serving, the InferenceService stays
    Ready, and the rollout never finishes. The run must fail, not report a promotion."""
    stuck = rule(
        "kubectl",
        r"rollout status deployment/bukva-predictor",
        rc=1,
        stderr='error: deployment "bukva-predictor" exceeded its progress deadline\n',
    )
    logs = rule(
        "kubectl",
        r"logs -l app.kubernetes.io/component=predictor ",
        "[pod/bukva-predictor-new] cannot load models:/bukva-cnn/3\n",
    )
    run = _promote(machine, stuck, logs)
    assert run.rc != 0
    assert "the app serves version 3" not in run.stdout
    assert "bukva-predictor did not roll out" in run.stderr
    assert "cannot load models:/bukva-cnn/3" in run.stderr, "the new pods' logs are shown"
    assert not run.find("kubectl", r"wait --for=condition=Ready"), "stopped at the rollout"


def test_a_promotion_fails_when_the_predictor_reports_another_version(machine: Machine) -> None:
    other = rule("kubectl", r"get --raw .*proxy/v2/models/bukva$", '{"versions": ["2"]}')
    run = _promote(machine, other)
    assert run.rc != 0 and "reports model version '2' in its v2 metadata, not 3" in run.stderr
    assert "the app serves version 3" not in run.stdout


def test_a_digits_only_tag_stays_a_string(machine: Machine) -> None:
    """A commit of digits only: `--set` would make it an integer, rendered by helm as
    `%!s(int64=123456789012)`, an invalid image name."""
    tag = "123456789012"
    run = _ok(_up(machine, IMAGE_TAG=tag))
    pushed = {c.args[-1] for c in run.calls if c.args[:1] == ["push"]}
    used = bukva_images(run.helm_render("bukva-platform") + run.helm_render("bukva"))
    assert used and all(ref.endswith(f":{tag}") for ref in used), used
    assert used <= pushed


def test_train_job_without_a_cluster_says_so(machine: Machine) -> None:
    rules = [rule("kubectl", r"get namespace bukva", rc=1, stderr="connection refused")]
    run = machine.run(TRAIN, rules + healthy(), {"CLUSTER_TOOL": "kind", "IMAGE_TAG": TAG})
    assert run.rc != 0 and "run 'make cluster-up' first" in run.stderr
    assert not run.find("kubectl", r"apply")


def test_cluster_down_removes_cluster_and_registry_and_is_idempotent(machine: Machine) -> None:
    run = _ok(machine.run(DOWN, rerun(), {"CLUSTER_TOOL": "kind"}))
    run.first("kind", r"^delete cluster --name bukva")
    run.first("docker", r"^rm -f bukva-registry")
    gone = [rule("docker", r"^inspect bukva-registry", rc=1), *healthy()]
    run = _ok(machine.run(DOWN, gone, {"CLUSTER_TOOL": "kind"}))
    assert "no kind cluster bukva" in run.stdout
    assert not run.find("kind", r"^delete") and not run.find("docker", r"^rm ")


@pytest.mark.parametrize("made_by", ["kind", "k3d"])
def test_cluster_down_deletes_with_the_tool_that_made_the_cluster(
    machine: Machine, made_by: str
) -> None:
    """Both tools installed: `make cluster down` (no CLUSTER_TOOL) deletes the cluster the
    last `cluster-up` made, whichever tool made it; later runs use that tool too."""
    _ok(_up(machine, made_by))
    down = _ok(machine.run(DOWN, rerun(), {}))
    other = "k3d" if made_by == "kind" else "kind"
    if made_by == "kind":
        down.first("kind", r"^delete cluster --name bukva")
    else:
        down.first("k3d", r"^cluster delete bukva")
    assert not down.find(other, r"delete"), down.transcript()
    # Without a record (`make clean` removed it): each tool's cluster of that name goes.
    down = _ok(machine.run(DOWN, rerun(), {}))
    down.first("kind", r"^delete cluster --name bukva")
    down.first("k3d", r"^cluster delete bukva")


def test_a_rerun_uses_the_tool_that_made_the_cluster(machine: Machine) -> None:
    _ok(_up(machine, "kind"))
    env = {"IMAGE_TAG": TAG}
    run = _ok(machine.run(UP, rerun(), env))
    assert run.find("kind", r"^get clusters") and not run.find("k3d", r"^cluster")


@pytest.mark.parametrize("verb", ["up", "down"])
def test_make_cluster_verb_is_make_cluster_dash_verb(machine: Machine, verb: str) -> None:
    rules = healthy() if verb == "up" else rerun()
    env = {"CLUSTER_TOOL": "kind", "IMAGE_TAG": TAG}
    two_words = _ok(machine.run(["make", "--no-print-directory", "cluster", verb], rules, env))
    dashed = _ok(machine.run(["make", "--no-print-directory", f"cluster-{verb}"], rules, env))

    def calls(run: Run) -> str:  # the per-run kustomization folder has a random name
        return re.sub(r"kustomize\.\w{6}", "kustomize.XXXXXX", run.transcript())

    assert calls(two_words) == calls(dashed)
    assert "launch.serve" not in two_words.stdout, "`up` stays the cluster's verb"


def test_image_tag_follows_the_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "cluster-tag.sh").write_bytes(
        (ROOT / "scripts" / "cluster-tag.sh").read_bytes()
    )
    (repo / ".gitignore").write_text("ignored/\n")
    (repo / "a.txt").write_text("one\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-qm", "x"]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout

    def tag() -> str:
        out = subprocess.run(
            ["bash", "scripts/cluster-tag.sh"], cwd=repo, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert tag() == commit[:12]
    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_text("data")
    assert tag() == commit[:12], "ignored files do not dirty the tag"
    (repo / "a.txt").write_text("changed\n")
    dirty = tag()
    assert re.fullmatch(rf"{commit[:12]}-dirty-[0-9a-f]{{8}}", dirty)
    assert tag() == dirty, "the same tree, the same tag"
    (repo / "new.txt").write_text("untracked\n")
    assert tag() not in (dirty, commit[:12]), "an untracked file is a change too"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True
    )
    assert "?? new.txt" in status.stdout, "the real index is untouched"


def test_make_tags_images_from_the_checkout() -> None:
    images = make_images({k: v for k, v in __import__("os").environ.items() if k != "IMAGE_TAG"})
    tags = {ref.rsplit(":", 1)[1] for ref in images}
    assert len(tags) == 1 and re.fullmatch(r"[0-9a-f]{12}(-dirty-[0-9a-f]{8})?", tags.pop())


@pytest.mark.parametrize("host", [("Darwin", "arm64"), ("Linux", "aarch64"), ("Darwin", "x86_64")])
def test_helm_fallback_refuses_a_host_it_has_no_binary_for(
    tmp_path: Path, host: tuple[str, str]
) -> None:
    machine = Machine(tmp_path, tools=())
    (machine.bin / "uname").write_text(
        f'#!/bin/sh\ncase "$1" in -s) echo {host[0]};; -m) echo {host[1]};; esac\n'
    )
    (machine.bin / "uname").chmod(0o755)
    # PATH: the stand-in uname and the basics, but no helm anywhere, no cached one either.
    basics = tmp_path / "basics"
    basics.mkdir()
    for name in ("bash", "dirname", "cat", "env"):
        found = subprocess.run(["which", name], capture_output=True, text=True).stdout.strip()
        (basics / name).symlink_to(found)
    env = {"PATH": f"{machine.bin}:{basics}", "BUKVA_TOOLS": str(tmp_path / "tools")}
    out = subprocess.run(
        ["bash", "scripts/get-helm.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 1
    assert f"this is {host[0]} {host[1]}" in out.stderr
    assert "https://helm.sh/docs/intro/install/" in out.stderr
    assert not (tmp_path / "tools").exists(), "nothing unpacked"
