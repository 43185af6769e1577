#!/usr/bin/env bash
# Validates the Kubernetes install offline (no cluster, no Docker):
#   1. deploy/*.yaml are exactly what `vctl deploy csidriver --render-to` writes (no drift);
#   2. every manifest in deploy/, `vctl deploy csidriver --dry-run -o yaml` output and
#      `kubectl kustomize deploy/` output pass the Kubernetes OpenAPI schemas (kubernetes-validate,
#      strict, Kubernetes $K8S_VERSION);
#   3. the Argo Workflow examples are well-formed, their claims and step containers pass the schemas,
#      and their steps run end to end on a temporary directory;
#   4. the Kubeflow Pipelines v2 examples compile with kfp, and their components run end to end;
#   5. vctl's error paths: bad --clusters, unknown flags, no kubectl on PATH, no reachable cluster,
#      a cluster without the snapshot CRDs (a stand-in kubectl that refuses VolumeSnapshotClass).
# Installs Tests/deploy/requirements.txt into the project venv ($VENV, default .venv).
# Set SWIFT_SCRATCH_PATH to build vctl in another scratch directory.
# Prints "N passed, N failed" and exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
K8S_VERSION="${K8S_VERSION:-1.30.0}"
DEFAULT_CLUSTER="vineyard-system/vineyardd-sample"
DEFAULT_STORAGE_CLASS="vineyard-system.vineyardd-sample.csi"
SWIFT_ARGS=()
[ -n "${SWIFT_SCRATCH_PATH:-}" ] && SWIFT_ARGS=(--scratch-path "$SWIFT_SCRATCH_PATH")

passed=0
failed=0
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# check NAME COMMAND...: runs COMMAND, counts it, and shows its output when it fails.
check() {
    local name="$1"
    shift
    local output
    if output="$("$@" 2>&1)"; then
        passed=$((passed + 1))
        echo "ok    $name"
    else
        failed=$((failed + 1))
        echo "FAIL  $name"
        printf '%s\n' "$output" | sed 's/^/      /'
    fi
}

echo "==> Python venv $VENV (Tests/deploy/requirements.txt)"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r Tests/deploy/requirements.txt || {
    echo "cannot install Tests/deploy/requirements.txt into $VENV"
    echo "0 passed, 1 failed"
    exit 1
}
PYTHON="$VENV/bin/python"

echo "==> swift build --product vctl"
if ! swift build --product vctl "${SWIFT_ARGS[@]}" >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi
VCTL="$(swift build "${SWIFT_ARGS[@]}" --show-bin-path)/vctl"

# The checks that need Python live in one helper, written here so the script stays self-contained.
HELPER="$WORK/helper.py"
cat >"$HELPER" <<'PY'
"""validate-deploy.sh's Python half: schema checks and example runs. Usage: helper.py COMMAND ARGS..."""
import importlib.util
import os
import pickle
import re
import subprocess
import sys
import tempfile
import urllib.parse

import kubernetes_validate
import yaml

K8S_VERSION = os.environ.get("K8S_VERSION", "1.30.0")


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


def manifests(paths):
    objects = []
    for path in paths:
        with open(path) as stream:
            objects += [obj for obj in yaml.safe_load_all(stream) if obj is not None]
    if not objects:
        sys.exit(f"no objects in {' '.join(paths)}")
    problems = schema_problems(objects)
    if problems:
        sys.exit("\n".join(problems))
    print(f"{len(objects)} objects valid against Kubernetes {K8S_VERSION}")


def argo(path, storage_class):
    with open(path) as stream:
        workflow = yaml.safe_load(stream)
    problems = []
    if workflow.get("apiVersion") != "argoproj.io/v1alpha1" or workflow.get("kind") != "Workflow":
        problems.append("not an argoproj.io/v1alpha1 Workflow")
    spec = workflow.get("spec", {})
    templates = {template["name"]: template for template in spec.get("templates", [])}
    entry = templates.get(spec.get("entrypoint"))
    if entry is None:
        sys.exit(f"entrypoint {spec.get('entrypoint')!r} is not a template")
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
    if problems:
        sys.exit("\n".join(problems))
    print(f"{len(steps)} steps, {len(claims)} claim(s) of {storage_class}")


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kfp_compile(path, output, storage_class):
    from kfp import compiler

    module = load_module(path, "pipeline_under_test")
    compiler.Compiler().compile(module.housing_pipeline, package_path=output)
    with open(output) as stream:
        documents = list(yaml.safe_load_all(stream))
    text = open(output).read()
    problems = []
    if storage_class not in text:
        problems.append(f"the compiled pipeline does not create a claim of {storage_class}")
    executors = documents[-1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(documents) > 1 else {}
    for step in ["prepare-data", "preprocess-data", "train-model", "test-model"]:
        mounts = [mount["mountPath"] for mount in executors.get(f"exec-{step}", {}).get("pvcMount", [])]
        if mounts != ["/vineyard"]:
            problems.append(f"{step} mounts {mounts}, not the claim at /vineyard")
    if problems:
        sys.exit("\n".join(problems))
    print(f"compiled to {output} ({len(text)} bytes)")


FAKE_VINEYARD_CSI = '''
"""Stand-in for vineyard.csi: same calls and socket lookup, objects pickled beside the socket."""
import os, pickle, urllib.parse

def _socket_directory(path):
    current = os.path.dirname(os.path.abspath(path))
    while current != "/":
        if os.path.exists(os.path.join(current, "vineyard.sock")):
            return current
        current = os.path.dirname(current)
    raise FileNotFoundError(f"The given path is not generated by vineyard CSI driver: {path}")

def _file(path):
    store = os.path.join(_socket_directory(path), ".objects")
    os.makedirs(store, exist_ok=True)
    return os.path.join(store, urllib.parse.quote(path, safe=""))

def write(value, path):
    with open(_file(path), "wb") as stream:
        pickle.dump(value, stream)

def read(path):
    with open(_file(path), "rb") as stream:
        return pickle.load(stream)
'''


def fake_vineyard(root):
    """A vineyard package whose csi module is the stand-in; returns the directory to put on sys.path."""
    package = os.path.join(root, "fake-vineyard", "vineyard")
    os.makedirs(package, exist_ok=True)
    open(os.path.join(package, "__init__.py"), "w").close()
    with open(os.path.join(package, "csi.py"), "w") as stream:
        stream.write(FAKE_VINEYARD_CSI)
    # The driver publishes the socket at the volume's root; the stand-in only looks for the file.
    open(os.path.join(root, "vineyard.sock"), "w").close()
    return os.path.dirname(package)


def check_score(output):
    match = re.search(r"R² (-?[0-9.]+)", output)
    if not match or float(match.group(1)) < 0.8:
        sys.exit(f"the test step scored badly or printed no score:\n{output}")
    return float(match.group(1))


def run_kfp(path):
    """Calls each component's Python function in order, on a temporary directory as the volume."""
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as volume:
        sys.path.insert(0, fake_vineyard(volume))
        module = load_module(path, "pipeline_steps")
        data_dir = volume
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            module.prepare_data.python_func(data_dir=data_dir, rows=5000, seed=7)
            module.preprocess_data.python_func(data_dir=data_dir, seed=7)
            module.train_model.python_func(data_dir=data_dir)
            score = module.test_model.python_func(data_dir=data_dir)
        check_score(printed.getvalue())
        print(f"prepare, preprocess, train, test ran; R² {score:.4f}")


def run_argo(path):
    """Runs each step's script in order with /vineyard replaced by a temporary directory."""
    with open(path) as stream:
        workflow = yaml.safe_load(stream)
    spec = workflow["spec"]
    parameters = {p["name"]: p["value"] for p in spec.get("arguments", {}).get("parameters", [])}
    parameters["rows"] = "5000"
    templates = {template["name"]: template for template in spec["templates"]}
    steps = [step for group in templates[spec["entrypoint"]]["steps"] for step in group]
    with tempfile.TemporaryDirectory() as volume:
        environment = dict(os.environ, PYTHONPATH=fake_vineyard(volume))
        output = ""
        for step in steps:
            source = templates[step["template"]]["script"]["source"]
            source = re.sub(r"\{\{workflow\.parameters\.(\w+)\}\}", lambda m: parameters[m.group(1)], source)
            source = source.replace("/vineyard", volume)
            result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=environment)
            if result.returncode != 0:
                sys.exit(f"step {step['name']} failed:\n{result.stderr}")
            output += result.stdout
        print(f"{', '.join(step['name'] for step in steps)} ran; R² {check_score(output):.4f}")


if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    {"manifests": lambda: manifests(arguments), "argo": lambda: argo(*arguments),
     "kfp-compile": lambda: kfp_compile(*arguments), "run-kfp": lambda: run_kfp(*arguments),
     "run-argo": lambda: run_argo(*arguments)}[command]()
PY
helper() { K8S_VERSION="$K8S_VERSION" "$PYTHON" "$HELPER" "$@"; }

# expect_failure NAME STATUS TEXT COMMAND...: COMMAND must exit with STATUS (or any non-zero for
# "nonzero") and print TEXT.
expect_failure() {
    local status="$1" text="$2"
    shift 2
    local output code
    output="$("$@" 2>&1)"
    code=$?
    if [ "$code" -eq 0 ]; then echo "succeeded, expected a failure"; return 1; fi
    if [ "$status" != nonzero ] && [ "$code" -ne "$status" ]; then echo "exit status $code, expected $status: $output"; return 1; fi
    if ! grep -qF -- "$text" <<<"$output"; then echo "output lacks \"$text\": $output"; return 1; fi
    echo "exit status $code: $(head -1 <<<"$output")"
}

echo "==> deploy/ is the builders' output"
drift() {
    "$VCTL" deploy csidriver --clusters "$DEFAULT_CLUSTER" --render-to "$WORK/rendered" >/dev/null || return 1
    local status=0 file
    for file in "$WORK"/rendered/*.yaml; do
        diff -u "deploy/$(basename "$file")" "$file" || status=1
    done
    for file in deploy/*.yaml; do
        [ -e "$WORK/rendered/$(basename "$file")" ] || { echo "$file is not rendered by vctl"; status=1; }
    done
    [ "$status" -eq 0 ] || echo "re-render: swift run vctl deploy csidriver --clusters $DEFAULT_CLUSTER --render-to deploy/"
    return "$status"
}
check "deploy/*.yaml match vctl deploy csidriver --render-to" drift

echo "==> Kubernetes $K8S_VERSION schemas (kubernetes-validate --strict)"
for file in deploy/*.yaml; do
    [ "$(basename "$file")" = kustomization.yaml ] && continue # a kustomize file, not a Kubernetes object
    check "$file" helper manifests "$file"
done
"$VCTL" deploy csidriver --dry-run -o yaml --clusters a/b,c/d >"$WORK/two-clusters.yaml" 2>"$WORK/two-clusters.err"
check "vctl deploy csidriver --dry-run -o yaml --clusters a/b,c/d" helper manifests "$WORK/two-clusters.yaml"
"$VCTL" deploy csidriver --dry-run -o yaml --clusters ml/store --name csi -n storage --storageClassName memory \
    --volumeBindingMode Immediate --enableToleration --verbose --imagePullPolicy Always --sidecar.imagePullPolicy Never \
    --provisionerImage example/p:1 --snapshotterImage example/s:1 --resizerImage example/z:1 \
    --attacherImage example/a:1 --nodeRegistrarImage example/r:1 --livenessProbeImage example/l:1 --storeSize 8Gi >"$WORK/all-flags.yaml" 2>/dev/null
check "vctl deploy csidriver --dry-run -o yaml with every flag" helper manifests "$WORK/all-flags.yaml"
"$VCTL" delete csidriver --dry-run -o yaml --clusters a/b,c/d >"$WORK/delete.yaml" 2>/dev/null
check "vctl delete csidriver --dry-run -o yaml --clusters a/b,c/d" helper manifests "$WORK/delete.yaml"
if command -v kubectl >/dev/null 2>&1; then
    kustomize_build() { kubectl kustomize deploy/ >"$WORK/kustomized.yaml" && helper manifests "$WORK/kustomized.yaml"; }
    check "kubectl kustomize deploy/" kustomize_build
else
    echo "skip  kubectl kustomize deploy/ (no kubectl on PATH)"
fi

echo "==> pipeline examples"
for workflow in deploy/examples/argo-workflow.yaml deploy/examples/argo-workflow-vineyard.yaml; do
    check "$workflow: structure, claim and containers" helper argo "$workflow" "$DEFAULT_STORAGE_CLASS"
    check "$workflow: steps run on a temporary volume" helper run-argo "$workflow"
done
for pipeline in deploy/examples/kfp_pipeline.py deploy/examples/kfp_pipeline_vineyard.py; do
    check "$pipeline: compiles with kfp" helper kfp-compile "$pipeline" "$WORK/$(basename "$pipeline" .py).yaml" "$DEFAULT_STORAGE_CLASS"
    check "$pipeline: components run on a temporary volume" helper run-kfp "$pipeline"
done

echo "==> vctl errors"
check "bad --clusters exits 64" expect_failure 64 '"nope" is not namespace/name' "$VCTL" deploy csidriver --clusters nope
check "unknown flag exits 64" expect_failure 64 "Unknown option '--bogus'" "$VCTL" deploy csidriver --clusters a/b --bogus
check "missing --clusters exits 64" expect_failure 64 "--clusters is required" "$VCTL" delete csidriver
check "no kubectl on PATH" expect_failure nonzero "kubectl was not found on PATH" env PATH="$WORK/empty" "$VCTL" deploy csidriver --clusters a/b
if command -v kubectl >/dev/null 2>&1; then
    cat >"$WORK/unreachable.kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: nobody, user: {token: none}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
EOF
    check "no reachable cluster" expect_failure nonzero "No Kubernetes cluster is reachable" \
        "$VCTL" deploy csidriver --clusters a/b --kubeconfig "$WORK/unreachable.kubeconfig"
else
    echo "skip  no reachable cluster (no kubectl on PATH)"
fi

# A cluster without the snapshot CRDs: kubectl refuses the VolumeSnapshotClass kind, as a real one
# does ("no matches for kind"); everything else applies, and vctl warns instead of failing.
mkdir -p "$WORK/no-crds"
cat >"$WORK/no-crds/kubectl" <<KUBECTL
#!/bin/sh
input="\$(cat)"
printf '%s\n' "\$input" >>"$WORK/no-crds/applied.yaml"
if printf '%s' "\$input" | grep -q '^kind: VolumeSnapshotClass'; then
    echo 'error: resource mapping not found for kind "VolumeSnapshotClass" in version "snapshot.storage.k8s.io/v1": ensure CRDs are installed first' >&2
    exit 1
fi
KUBECTL
chmod +x "$WORK/no-crds/kubectl"
without_snapshot_crds() {
    local output
    output="$(env PATH="$WORK/no-crds:$PATH" "$VCTL" deploy csidriver --clusters a/b 2>&1)" || { echo "failed: $output"; return 1; }
    grep -qF "the VolumeSnapshotClasses were not applied" <<<"$output" || { echo "no warning: $output"; return 1; }
    grep -q '^kind: DaemonSet' "$WORK/no-crds/applied.yaml" || { echo "the DaemonSets were not applied"; return 1; }
    echo "applied everything else and warned"
}
check "no snapshot CRDs: VolumeSnapshotClass skipped with a warning" without_snapshot_crds

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
