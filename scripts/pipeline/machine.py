"""Facts about the machine and software a benchmark ran on."""

import os
import platform
import subprocess
from pathlib import Path


def _first(path, key):
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _command(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _version(module):
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 (any failure just means "unknown")
        return "not installed"


def memory_return():
    """How this machine hands memory back: virtio-balloon free page reporting (freed guest pages
    go back to the hypervisor, so touching fresh memory later costs host faults) and DAMON
    schemes (e.g. `pageout` of cold memory). Both make compute-only steps vary with what ran before."""
    reporting = False
    for features in Path("/sys/bus/virtio/drivers/virtio_balloon").glob("virtio*/features"):
        bits = features.read_text().strip()
        reporting = reporting or (len(bits) > 5 and bits[5] == "1")  # VIRTIO_BALLOON_F_REPORTING
    actions = []
    for kdamond in Path("/sys/kernel/mm/damon/admin/kdamonds").glob("[0-9]*"):
        try:
            if (kdamond / "state").read_text().strip() != "on":
                continue
        except OSError:
            continue
        for action in kdamond.glob("contexts/*/schemes/*/action"):
            actions.append(action.read_text().strip())
    # How soon and how much of freed memory is reported, where the kernel lets us read it.
    tunables = {}
    for name in ("page_reporting_order", "min_free_ms"):
        try:
            tunables[name] = (Path("/sys/module/page_reporting/parameters") / name).read_text().strip()
        except OSError:
            pass
    return {"free_page_reporting": reporting, "page_reporting": tunables, "damon_actions": sorted(set(actions))}


def facts(bin_dir):
    mem_kib = int(_first("/proc/meminfo", "MemTotal").split()[0]) if _first("/proc/meminfo", "MemTotal") != "unknown" else 0
    os_release = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')
    except OSError:
        pass
    repo = str(Path(__file__).resolve().parents[2])
    revision = _command("git", "-C", repo, "rev-parse", "--short", "HEAD")
    sources = _command("git", "-C", repo, "log", "-1", "--format=%h", "--", "Sources", "Package.swift")
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", "unknown"),
        "python": platform.python_version(),
        "swift": _command("swift", "--version").splitlines()[0] if _command("swift", "--version") else "unknown",
        "libfuse": _command("pkg-config", "--modversion", "fuse3"),
        "vineyard-csi": f"{revision}, driver sources last changed in {sources} (release build in {bin_dir})",
        "packages": {name: _version(name) for name in ("vineyard", "pandas", "numpy", "scikit-learn", "matplotlib")},
        "load_average_at_start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "memory_return": memory_return(),
    }
