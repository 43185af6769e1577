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
    }
