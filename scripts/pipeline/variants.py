"""The storage the pipeline's steps share, one class per variant of the benchmark.

Every variant is set up fresh for one pipeline run and torn down after it, so the memory one
holds (tmpfs pages, a vineyardd arena, the driver's store) is returned before the next starts.
For each step the variant publishes the shared storage on a target directory of its own, the
way kubelet gives every pod its own volume path; the step then sees it at the container's mount
path (see runner.py).
"""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.mounts import unmount_all_under

from . import csi, processes
from .ganesha import GaneshaServer, GaneshaUnavailable

MiB = 1 << 20


class Unavailable(Exception):
    """The variant cannot run on this machine or build; the message says why."""


def bind_mount(source, target):
    Path(target).mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)


def unmount(target):
    subprocess.run(["umount", "-l", str(target)], check=False, stderr=subprocess.DEVNULL)
    try:
        os.rmdir(target)
    except OSError:
        pass


class Variant:
    key = ""
    io = "file"
    label = ""

    def __init__(self, options):
        self.options = options

    def setup(self, run_dir, capacity_bytes):
        """Prepares the storage for one run; raises Unavailable when it cannot exist here."""

    def publish(self, target):
        raise NotImplementedError

    def location(self, container_path):
        """What a step is given as --data: where it sees the storage (a URL for NFS)."""
        return container_path

    def describe(self):
        """Facts about the storage as it ran, for the report (after setup)."""
        return {}

    def unpublish(self, target):
        unmount(target)

    def teardown(self):
        """Releases everything setup() and publish() made, even after a failure."""


class GaneshaNFS(Variant):
    """A real NFS export on loopback: nfs-ganesha serving a local-disk directory (ganesha.py); the
    steps connect to it with a user-space client (nfsclient.py), since the kernel has none."""

    key = "nfs"
    io = "nfs"
    label = "(a) NFS (nfs-ganesha on loopback)"

    def setup(self, run_dir, capacity_bytes):
        from . import nfsclient

        try:
            GaneshaServer.check_installed()
            nfsclient.library()
        except (GaneshaUnavailable, nfsclient.NFSError) as reason:
            raise Unavailable(str(reason)) from None
        base = self.options.get("disk_dir") or "/var/tmp"
        self.directory = Path(tempfile.mkdtemp(prefix="vineyard-pipeline-nfs-", dir=base))
        self.server = GaneshaServer(self.directory, run_dir).start()
        # One connection now, as a check that the export serves and to learn its rsize/wsize.
        with nfsclient.Export(self.server.url) as export:
            self.io_sizes = export.read_max, export.write_max

    def publish(self, target):
        # Nothing to mount (no kernel client): the step connects to location() itself.
        Path(target).mkdir(parents=True, exist_ok=True)
        return target

    def location(self, container_path):
        return self.server.url

    def describe(self):
        facts = self.server.describe()
        facts["rsize"], facts["wsize"] = self.io_sizes
        return facts

    def teardown(self):
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()
            self.server = None
        if getattr(self, "directory", None) is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class LocalDisk(Variant):
    """A directory on the local disk, every written file fsync'd (what an NFS client's close-to-open
    commit costs the disk), bind-mounted per step: (a) without the protocol, so next to (a) it
    shows what the NFS protocol itself costs; the baseline when (a) cannot run."""

    key = "local-disk"
    io = "file-fsync"
    label = "(a') local disk + fsync"

    def __init__(self, options):
        super().__init__(options)
        self.directory = None

    def setup(self, run_dir, capacity_bytes):
        base = self.options.get("disk_dir") or "/var/tmp"
        self.directory = Path(tempfile.mkdtemp(prefix="vineyard-pipeline-disk-", dir=base))

    def publish(self, target):
        bind_mount(self.directory, target)
        return target

    def teardown(self):
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class Tmpfs(Variant):
    """A tmpfs of its own: the memory-speed limit for plain files."""

    key = "tmpfs"
    io = "file"
    label = "(b) tmpfs"

    def setup(self, run_dir, capacity_bytes):
        self.directory = Path(run_dir) / "tmpfs"
        self.directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={capacity_bytes // MiB}m", "pipeline-tmpfs",
                        str(self.directory)], check=True)

    def publish(self, target):
        bind_mount(self.directory, target)
        return target

    def teardown(self):
        if getattr(self, "directory", None) is not None:
            unmount(self.directory)
            self.directory = None


class Vineyardd(Variant):
    """Real vineyard: vineyardd from the `vineyard` wheel, its socket directory bind-mounted into
    each step as the vineyard Go CSI driver does, and the steps' vineyard.csi.write/read calls."""

    key = "vineyard"
    io = "vineyard"
    label = "(c) vineyardd + vineyard.csi"

    def setup(self, run_dir, capacity_bytes):
        binary = vineyardd_binary()
        if binary is None:
            raise Unavailable("vineyardd not found (pip install vineyard)")
        self.directory = Path(tempfile.mkdtemp(prefix="vineyard-pipeline-vineyardd-", dir="/dev/shm"))
        self.socket = self.directory / "vineyard.sock"
        self.log = open(Path(run_dir) / "vineyardd.log", "ab")
        self.process = subprocess.Popen([
            str(binary), "--socket", str(self.socket), "--meta", "local", "--rpc=false",
            "--size", f"{capacity_bytes // MiB}M",
            # The same head start vineyard-csi gets from --store-prefault.
            *(["--reserve_memory"] if self.options.get("store_prefault") else []),
        ], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vineyardd did not start; see {run_dir}/vineyardd.log")
            time.sleep(0.05)

    def publish(self, target):
        bind_mount(self.directory, target)
        return target

    def teardown(self):
        process = getattr(self, "process", None)
        if process is not None:
            processes.stop(process)
            self.process = None
            self.log.close()
        if getattr(self, "directory", None) is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class CSIVolume(Variant):
    """A vineyard-csi volume: CreateVolume, NodeStageVolume once, NodePublishVolume per step, all
    over the real driver's socket."""

    key = "csi-file"
    io = "file"
    label = "(d) vineyard-csi, plain files"

    def setup(self, run_dir, capacity_bytes):
        binary = Path(self.options["bin_dir"]) / "vineyard-csi"
        if not binary.exists():
            raise Unavailable(f"{binary} is not built")
        run_dir = Path(run_dir)
        self.store_dir = Path(tempfile.mkdtemp(prefix="vineyard-pipeline-store-", dir="/dev/shm"))
        store_size = f"{capacity_bytes // MiB + 64}Mi"
        self.driver = csi.Driver(binary, run_dir / "driver", self.store_dir, store_size,
                                 self.options.get("read_mode", "page-cache"),
                                 self.options.get("store_prefault", False),
                                 self.options.get("store_huge_pages", False)).start()
        self.volume = csi.Volume(self.driver, f"pvc-pipeline-{os.getpid()}-{time.monotonic_ns()}", capacity_bytes,
                                 run_dir / "driver" / "staging")
        self.volume.stage()

    def publish(self, target):
        return self.volume.publish(target)

    def unpublish(self, target):
        self.volume.unpublish(target)

    def teardown(self):
        volume = getattr(self, "volume", None)
        if volume is not None:
            volume.release()
            self.volume = None
        driver = getattr(self, "driver", None)
        if driver is not None:
            workdir = driver.workdir
            driver.stop()
            unmount_all_under(workdir)
            self.driver = None
        if getattr(self, "store_dir", None) is not None:
            # --store-huge-pages mounted a tmpfs of the driver's own there.
            subprocess.run(["umount", "-l", str(self.store_dir)], stderr=subprocess.DEVNULL, check=False)
            shutil.rmtree(self.store_dir, ignore_errors=True)
            self.store_dir = None


class CSIVineyardSocket(CSIVolume):
    """A vineyard-csi volume used through the vineyard.sock it serves in the volume, with the
    unchanged vineyard.csi.write/read calls. Skipped while the driver serves no such socket."""

    key = "csi-vineyard"
    io = "vineyard"
    label = "(e) vineyard-csi, vineyard.csi via vineyard.sock"

    def setup(self, run_dir, capacity_bytes):
        super().setup(run_dir, capacity_bytes)
        probe = Path(run_dir) / "socket-probe"
        self.publish(probe)
        try:
            if not (probe / "vineyard.sock").exists():
                raise Unavailable("not available: the volume has no vineyard.sock (this driver build serves no "
                                  "vineyard IPC socket in its volumes yet)")
        finally:
            self.unpublish(probe)


VARIANTS = {cls.key: cls for cls in (GaneshaNFS, LocalDisk, Tmpfs, Vineyardd, CSIVolume, CSIVineyardSocket)}


def vineyardd_binary():
    """The vineyardd shipped in the vineyard wheel (vineyard/bdist/vineyardd), or one on PATH."""
    try:
        import vineyard

        candidate = Path(vineyard.__file__).parent / "bdist" / "vineyardd"
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    found = shutil.which("vineyardd")
    return Path(found) if found else None
