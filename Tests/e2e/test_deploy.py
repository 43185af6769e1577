"""The Kubernetes install, checked offline (no cluster, no Docker), with the built `vctl`:

1. deploy/*.yaml are exactly what `vctl deploy csidriver --render-to` writes (no drift);
2. every manifest in deploy/, `vctl deploy csidriver --dry-run -o yaml` output and
   `kubectl kustomize deploy/` output pass the Kubernetes OpenAPI schemas (kubernetes-validate,
   strict, Kubernetes $K8S_VERSION, default 1.30.0);
3. the Argo Workflow examples are well-formed, their claims and step containers pass the schemas,
   and their steps run end to end on a temporary directory;
4. the Kubeflow Pipelines v2 examples compile with kfp, and their components run end to end;
5. vctl's error paths: bad --clusters, unknown flags, no kubectl on PATH, no reachable cluster,
   a cluster without the snapshot CRDs (a stand-in kubectl that refuses VolumeSnapshotClass).

The examples are compiled and run by deploy_examples.py, each in a process of its own. The checks
that need kubectl skip when it is not on PATH.
"""

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from conftest import REPO, VCTL

K8S_VERSION = os.environ.get("K8S_VERSION", "1.30.0")
DEFAULT_CLUSTER = "vineyard-system/vineyardd-sample"
DEFAULT_STORAGE_CLASS = "vineyard-system.vineyardd-sample.csi"
DEPLOY = REPO / "deploy"
EXAMPLES = DEPLOY / "examples"
MANIFESTS = sorted(path.name for path in DEPLOY.glob("*.yaml") if path.name != "kustomization.yaml")  # kustomize's own file is no Kubernetes object
ARGO_WORKFLOWS = ("argo-workflow.yaml", "argo-workflow-vineyard.yaml")
KFP_PIPELINES = ("kfp_pipeline.py", "kfp_pipeline_vineyard.py")
RUNNER = Path(__file__).resolve().parent / "deploy_examples.py"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on PATH")


def describe(obj):
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name') or (obj.get('metadata') or {}).get('generateName')}"


def volume_snapshot_class_problems(obj):
    """The VolumeSnapshotClass CRD's schema (external-snapshotter, snapshot.storage.k8s.io/v1),
    checked strictly: kubernetes-validate knows the built-in kinds only."""
    where = describe(obj)
    problems = [f"{where}: unknown field {key}" for key in obj
                if key not in {"apiVersion", "kind", "metadata", "driver", "deletionPolicy", "parameters"}]
    name = (obj.get("metadata") or {}).get("name", "")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) or len(name) > 253:
        problems.append(f"{where}: metadata.name is not a DNS subdomain")
    if not isinstance(obj.get("driver"), str) or not obj["driver"]:
        problems.append(f"{where}: driver is required")
    if obj.get("deletionPolicy") not in ("Delete", "Retain"):
        problems.append(f"{where}: deletionPolicy must be Delete or Retain")
    parameters = obj.get("parameters", {})
    if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
        problems.append(f"{where}: parameters must map strings to strings")
    return problems


CRD_CHECKS = {("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"): volume_snapshot_class_problems}


def schema_problems(objects):
    """Strict validation of each object; one line per problem."""
    problems = []
    for obj in objects:
        crd_check = CRD_CHECKS.get((obj.get("apiVersion"), obj.get("kind")))
        if crd_check:
            problems += crd_check(obj)
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{describe(obj)}: no Kubernetes {K8S_VERSION} schema for {obj.get('apiVersion')} {obj.get('kind')}")
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in getattr(error, "path", []))
            message = getattr(error, "message", str(error).splitlines()[0])
            problems.append(f"{describe(obj)}: {message} (at {where or 'top level'})")
    return problems


def argo_problems(path, storage_class):
    with open(path) as stream:
        workflow = yaml.safe_load(stream)
    problems = []
    if workflow.get("apiVersion") != "argoproj.io/v1alpha1" or workflow.get("kind") != "Workflow":
        problems.append("not an argoproj.io/v1alpha1 Workflow")
    spec = workflow.get("spec", {})
    templates = {template["name"]: template for template in spec.get("templates", [])}
    entry = templates.get(spec.get("entrypoint"))
    if entry is None:
        return [f"entrypoint {spec.get('entrypoint')!r} is not a template"]
    steps = [step for group in entry.get("steps", []) for step in group]
    if [step["name"] for step in steps] != ["prepare", "preprocess", "train", "test"]:
        problems.append(f"steps are {[step['name'] for step in steps]}, not prepare, preprocess, train, test")
    claims = spec.get("volumeClaimTemplates", [])
    for claim in claims:
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **claim}
        problems += schema_problems([pvc])
        if claim["spec"].get("storageClassName") != storage_class:
            problems.append(f"claim {claim['metadata']['name']} uses {claim['spec'].get('storageClassName')}, not {storage_class}")
    claim_names = [claim["metadata"]["name"] for claim in claims]
    for step in steps:
        template = templates.get(step["template"])
        if template is None:
            problems.append(f"step {step['name']} names no template")
            continue
        container = {key: value for key, value in template["script"].items() if key != "source"}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": template["name"]},
            "spec": {
                "containers": [{"name": "main", **container}],
                "volumes": [{"name": name, "persistentVolumeClaim": {"claimName": name}} for name in claim_names],
            },
        }
        problems += schema_problems([pod])
        mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
        if mounts.get("/vineyard") not in claim_names:
            problems.append(f"template {template['name']} does not mount the workflow's claim at /vineyard")
    return problems


def objects_in(text):
    return [obj for obj in yaml.safe_load_all(text) if obj is not None]


def assert_valid(objects, what):
    assert objects, f"no objects in {what}"
    problems = schema_problems(objects)
    assert not problems, "\n".join(problems)


def vctl(*arguments, env=None):
    assert VCTL.exists(), f"{VCTL} is not built (swift build --product vctl)"
    return subprocess.run([str(VCTL), *arguments], capture_output=True, text=True, env=env, timeout=120)


def run_example(*arguments):
    finished = subprocess.run([sys.executable, str(RUNNER), *map(str, arguments)], capture_output=True, text=True,
                              cwd=REPO, timeout=900)
    assert finished.returncode == 0, f"{finished.stdout}{finished.stderr}"
    return finished.stdout


def test_deploy_manifests_are_what_vctl_renders(tmp_path):
    rendered = tmp_path / "rendered"
    finished = vctl("deploy", "csidriver", "--clusters", DEFAULT_CLUSTER, "--render-to", str(rendered))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    hint = f"re-render: swift run vctl deploy csidriver --clusters {DEFAULT_CLUSTER} --render-to deploy/"
    written = sorted(path.name for path in rendered.glob("*.yaml"))
    assert written, f"vctl rendered nothing into {rendered}"
    for name in written:
        kept = (DEPLOY / name).read_text().splitlines(keepends=True) if (DEPLOY / name).exists() else []
        drift = "".join(difflib.unified_diff(kept, (rendered / name).read_text().splitlines(keepends=True),
                                             f"deploy/{name}", f"rendered/{name}"))
        assert not drift, f"{drift}{hint}"
    not_rendered = [path.name for path in DEPLOY.glob("*.yaml") if not (rendered / path.name).exists()]
    assert not not_rendered, f"deploy/{not_rendered} not rendered by vctl; {hint}"


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_passes_the_kubernetes_schemas(name):
    assert_valid(objects_in((DEPLOY / name).read_text()), f"deploy/{name}")


@pytest.mark.parametrize("arguments", [
    ("deploy", "csidriver", "--dry-run", "-o", "yaml", "--clusters", "a/b,c/d"),
    ("deploy", "csidriver", "--dry-run", "-o", "yaml", "--clusters", "ml/store", "--name", "csi", "-n", "storage",
     "--storageClassName", "memory", "--volumeBindingMode", "Immediate", "--enableToleration", "--verbose",
     "--imagePullPolicy", "Always", "--sidecar.imagePullPolicy", "Never", "--provisionerImage", "example/p:1",
     "--snapshotterImage", "example/s:1", "--resizerImage", "example/z:1", "--attacherImage", "example/a:1",
     "--nodeRegistrarImage", "example/r:1", "--livenessProbeImage", "example/l:1", "--storeSize", "8Gi"),
    ("delete", "csidriver", "--dry-run", "-o", "yaml", "--clusters", "a/b,c/d"),
], ids=["deploy-two-clusters", "deploy-every-flag", "delete-two-clusters"])
def test_vctl_dry_run_output_passes_the_kubernetes_schemas(arguments):
    finished = vctl(*arguments)
    assert finished.returncode == 0, finished.stderr
    assert_valid(objects_in(finished.stdout), "vctl " + " ".join(arguments))


@needs_kubectl
def test_kustomize_build_passes_the_kubernetes_schemas():
    built = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert_valid(objects_in(built.stdout), "kubectl kustomize deploy/")


@pytest.mark.parametrize("name", ARGO_WORKFLOWS)
def test_argo_workflow_structure_claim_and_containers(name):
    problems = argo_problems(EXAMPLES / name, DEFAULT_STORAGE_CLASS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ARGO_WORKFLOWS)
def test_argo_workflow_steps_run_on_a_temporary_volume(name):
    run_example("run-argo", EXAMPLES / name)


@pytest.mark.parametrize("name", KFP_PIPELINES)
def test_kfp_pipeline_compiles(name, tmp_path):
    run_example("kfp-compile", EXAMPLES / name, tmp_path / f"{Path(name).stem}.yaml", DEFAULT_STORAGE_CLASS)


@pytest.mark.parametrize("name", KFP_PIPELINES)
def test_kfp_pipeline_components_run_on_a_temporary_volume(name):
    run_example("run-kfp", EXAMPLES / name)


def expect_failure(finished, text, status=None):
    """`finished` exited non-zero (with `status` when given) and printed `text`."""
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, f"succeeded, expected a failure: {output}"
    if status is not None:
        assert finished.returncode == status, f"exit status {finished.returncode}, expected {status}: {output}"
    assert text in output, f"output lacks {text!r}: {output}"


def test_vctl_bad_clusters_exits_64():
    expect_failure(vctl("deploy", "csidriver", "--clusters", "nope"), '"nope" is not namespace/name', 64)


def test_vctl_unknown_flag_exits_64():
    expect_failure(vctl("deploy", "csidriver", "--clusters", "a/b", "--bogus"), "Unknown option '--bogus'", 64)


def test_vctl_missing_clusters_exits_64():
    expect_failure(vctl("delete", "csidriver"), "--clusters is required", 64)


def test_vctl_without_kubectl_on_path(tmp_path):
    environment = dict(os.environ, PATH=str(tmp_path / "empty"))
    expect_failure(vctl("deploy", "csidriver", "--clusters", "a/b", env=environment), "kubectl was not found on PATH")


@needs_kubectl
def test_vctl_with_no_reachable_cluster(tmp_path):
    kubeconfig = tmp_path / "unreachable.kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: nobody, user: {token: none}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
""")
    expect_failure(vctl("deploy", "csidriver", "--clusters", "a/b", "--kubeconfig", str(kubeconfig)),
                   "No Kubernetes cluster is reachable")


def test_vctl_without_snapshot_crds_skips_the_snapshot_class_with_a_warning(tmp_path):
    """A cluster without the snapshot CRDs: kubectl refuses the VolumeSnapshotClass kind, as a real one
    does ("no matches for kind"); everything else applies, and vctl warns instead of failing."""
    stand_in = tmp_path / "no-crds"
    stand_in.mkdir()
    applied = stand_in / "applied.yaml"
    (stand_in / "kubectl").write_text(f"""#!/bin/sh
input="$(cat)"
printf '%s\\n' "$input" >>"{applied}"
if printf '%s' "$input" | grep -q '^kind: VolumeSnapshotClass'; then
    echo 'error: resource mapping not found for kind "VolumeSnapshotClass" in version "snapshot.storage.k8s.io/v1": ensure CRDs are installed first' >&2
    exit 1
fi
""")
    (stand_in / "kubectl").chmod(0o755)
    environment = dict(os.environ, PATH=f"{stand_in}:{os.environ.get('PATH', '')}")
    finished = vctl("deploy", "csidriver", "--clusters", "a/b", env=environment)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, f"failed: {output}"
    assert "the VolumeSnapshotClasses were not applied" in output, f"no warning: {output}"
    assert re.search(r"^kind: DaemonSet", applied.read_text(), re.MULTILINE), "the DaemonSets were not applied"
