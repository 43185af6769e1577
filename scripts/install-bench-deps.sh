#!/usr/bin/env bash
# Installs what the benchmarks need on top of scripts/install-deps.sh (which the tests use):
#   - the pipeline's NFS variant (scripts/bench-pipeline.sh, variant (a)): a user-space NFS server
#     (nfs-ganesha with its VFS backend, rpcbind) and the user-space client library (libnfs);
#   - the pipeline report's plot (scripts/pipeline/requirements.txt: matplotlib).
# Every bench-*.sh calls it; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/apt-install.sh nfs-ganesha nfs-ganesha-vfs rpcbind libnfs13
# Even with no services started, stop a ganesha an install may have started (by its pid file;
# never by name): the pipeline runs its own ganesha per run.
pid_file=/var/run/ganesha/ganesha.pid
if [ -s "$pid_file" ] && [ "$(cat /proc/"$(cat "$pid_file")"/comm 2>/dev/null)" = "ganesha.nfsd" ]; then
    echo "==> stopping the ganesha.nfsd the package started (pid $(cat "$pid_file"))"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO kill "$(cat "$pid_file")"
fi
"${VENV:-.venv}/bin/python" -m pip install -q --disable-pip-version-check -r scripts/pipeline/requirements.txt
