"""Facts about the machine and software a benchmark ran on."""

import os
import platform
import statistics
import subprocess
import time
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


def describe_memory_return(memory):
    """memory_return()'s result in words, for the reports; None when the machine keeps its memory."""
    if not memory or not (memory.get("free_page_reporting") or memory.get("damon_actions")):
        return None
    parts = []
    if memory.get("free_page_reporting"):
        tunables = "".join(f", `{name}` {value}" for name, value in sorted(memory.get("page_reporting", {}).items()))
        parts.append(f"freed memory goes back to the hypervisor (virtio-balloon free page reporting{tunables})")
    if memory.get("damon_actions"):
        parts.append(f"DAMON runs `{'`, `'.join(memory['damon_actions'])}` on cold memory")
    return " and ".join(parts)


def _touch_fresh(byte_count):
    """Seconds to allocate and first-touch byte_count bytes of memory this process never had."""
    import numpy as np

    start = time.perf_counter()
    block = np.ones(byte_count // 8, dtype=np.int64)  # large enough for its own mmap, so fresh pages
    seconds = time.perf_counter() - start
    del block  # unmapped: its pages go back to the kernel's free lists
    return seconds


def fresh_memory_cost(settle_seconds, byte_count=96 << 20, freed_bytes=2 << 30, rounds=2):
    """What a process pays to first-touch byte_count bytes (about what train's two index copies
    write at 2 GiB) when the kernel's free memory was freed just now, against when it was freed
    settle_seconds ago.

    On a VM that hands freed memory back to the hypervisor (free page reporting), the second is
    memory the host must back again: one host fault per page, several times the cost of the first.
    That is what a pipeline step meets when it allocates after the previous step's memory has been
    returned. Returns medians over `rounds` and the settle time used."""
    just_freed, settled = [], []
    for _ in range(rounds):
        _touch_fresh(freed_bytes)  # free memory the kernel hands out next is now these warm pages
        just_freed.append(_touch_fresh(byte_count))
        _touch_fresh(freed_bytes)
        time.sleep(settle_seconds)
        settled.append(_touch_fresh(byte_count))
    return {"bytes": byte_count, "freed_bytes": freed_bytes, "settle_seconds": settle_seconds,
            "just_freed_seconds": statistics.median(just_freed), "settled_seconds": statistics.median(settled)}


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
