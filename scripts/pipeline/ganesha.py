"""A real NFS export on loopback for the pipeline's variant (a): Debian's nfs-ganesha (FSAL VFS).

The machines this runs on have no kernel NFS server or client, but nfs-ganesha serves NFS from
user space, and the steps reach it with libnfs (see nfsclient.py). One server per pipeline run:

- run in the foreground (`-F`) with a config file, pid file and log of its own in the run
  directory, exporting one local-disk directory to 127.0.0.1 only, bound to 127.0.0.1 on two
  ports picked free for this run (NFS and MOUNT), so neither a server left by an earlier run nor
  one an apt install may have started can be in the way;
- NFSv3 over TCP: libnfs 4.0's NFSv4 client cannot send a WRITE larger than about 4 KB, and its
  NFSv3 client is the mature one. Ganesha does not start NFSv3 unless it can register it with
  rpcbind, so an rpcbind is started (`rpcbind -f`) when none answers, and stopped again after;
- no systemd or D-Bus needed (ganesha logs that it has no D-Bus and carries on); a grace period
  is skipped (`Graceless`), and its recovery directory is per run too;
- stopped by PID (SIGTERM, SIGKILL after 20 s) at teardown, and it gets SIGTERM should the thread
  that started it die first.
"""

import glob
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import nfsclient, processes

RPCBIND_SOCKET = "/run/rpcbind.sock"
# What the server offers per READ/WRITE (ganesha's defaults, stated so the report can say so):
# 1 MiB, the largest rsize/wsize the Linux kernel client uses.
IO_SIZE = 1 << 20
READY_LINE = "NFS SERVER INITIALIZED"


class GaneshaUnavailable(Exception):
    """Something nfs-ganesha needs is not installed; the message says what."""


def package_version(package):
    found = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


def free_ports(count):
    """Ports on 127.0.0.1 nobody listens on right now (held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def rpcbind_answers():
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(RPCBIND_SOCKET)
            return True
        except OSError:
            return False


def wait_for(condition, process, timeout, what, log):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} while starting; see {log}:\n"
                               + tail(log))
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in {timeout} s; see {log}:\n" + tail(log))
        time.sleep(0.05)


def tail(path, lines=25):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


CONFIG = """\
# Written by scripts/pipeline/ganesha.py for one pipeline run; removed with the run directory.
NFS_CORE_PARAM {{
    Bind_addr = 127.0.0.1;
    NFS_Port = {nfs_port};
    MNT_Port = {mount_port};
    Protocols = 3;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    MaxRSize = {io_size};
    MaxWSize = {io_size};
}}
NFSV4 {{
    Graceless = true;
    RecoveryRoot = {recovery};
}}
NFS_KRB5 {{
    Active_krb5 = false;
}}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = /pipeline;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    Squash = No_Root_Squash;
    Access_Type = None;
    CLIENT {{
        Clients = 127.0.0.1;
        Access_Type = RW;
    }}
    FSAL {{
        Name = VFS;
    }}
}}
LOG {{
    Default_Log_Level = EVENT;
}}
"""


class GaneshaServer:
    """One ganesha.nfsd exporting `export_dir` on loopback; files of its own under `run_dir`."""

    def __init__(self, export_dir, run_dir):
        self.export_dir = Path(export_dir).resolve()
        self.run_dir = Path(run_dir)
        self.process = None
        self.rpcbind = None
        self.nfs_port = self.mount_port = None

    @staticmethod
    def check_installed():
        binary = shutil.which("ganesha.nfsd") or shutil.which("ganesha.nfsd", path="/usr/bin:/usr/sbin")
        if binary is None:
            raise GaneshaUnavailable("ganesha.nfsd not found (apt-get install nfs-ganesha nfs-ganesha-vfs)")
        if not glob.glob("/usr/lib/*/ganesha/libfsalvfs.so") + glob.glob("/usr/lib/ganesha/libfsalvfs.so"):
            raise GaneshaUnavailable("ganesha's VFS backend is missing (apt-get install nfs-ganesha-vfs)")
        rpcbind = shutil.which("rpcbind") or shutil.which("rpcbind", path="/usr/sbin:/sbin")
        if rpcbind is None and not rpcbind_answers():
            raise GaneshaUnavailable("rpcbind not found (apt-get install rpcbind)")
        return binary, rpcbind

    @property
    def url(self):
        """The export as a libnfs URL: NFSv3, ports given, so the client asks no portmapper."""
        return f"nfs://127.0.0.1{self.export_dir}?version=3&nfsport={self.nfs_port}&mountport={self.mount_port}"

    def start(self, timeout=60):
        binary, rpcbind = self.check_installed()
        directory = self.run_dir / "ganesha"
        directory.mkdir(parents=True, exist_ok=True)
        if not rpcbind_answers():
            log = directory / "rpcbind.log"
            with open(log, "ab") as output:
                self.rpcbind = subprocess.Popen([rpcbind, "-f"], stdout=output, stderr=subprocess.STDOUT,
                                                preexec_fn=processes.die_with_parent)
            wait_for(rpcbind_answers, self.rpcbind, 10, "rpcbind", log)
        self.nfs_port, self.mount_port = free_ports(2)
        (directory / "recovery").mkdir(exist_ok=True)
        config = directory / "ganesha.conf"
        config.write_text(CONFIG.format(nfs_port=self.nfs_port, mount_port=self.mount_port, io_size=IO_SIZE,
                                        recovery=directory / "recovery", export=self.export_dir))
        self.log = directory / "ganesha.log"
        with open(directory / "ganesha.out", "ab") as output:
            self.process = subprocess.Popen(
                [binary, "-F", "-f", str(config), "-L", str(self.log), "-p", str(directory / "ganesha.pid"),
                 "-N", "NIV_EVENT"], stdout=output, stderr=subprocess.STDOUT, preexec_fn=processes.die_with_parent)
        wait_for(lambda: READY_LINE in tail(self.log, 200), self.process, timeout, "ganesha.nfsd", self.log)
        return self

    def describe(self):
        return {
            "server": f"nfs-ganesha {package_version('nfs-ganesha') or 'unknown'} (FSAL VFS)",
            "client": f"libnfs {package_version('libnfs13') or 'unknown'} (user space, ctypes)",
            "in_flight": nfsclient.IN_FLIGHT,
            "protocol": "NFSv3 over TCP",
            "rsize": IO_SIZE,
            "wsize": IO_SIZE,
            "rpcbind": "started for the run" if self.rpcbind is not None else "already running",
        }

    def stop(self):
        """Stops ganesha (it unregisters from rpcbind), then the rpcbind this server started."""
        status = processes.stop(self.process)
        self.process = None
        processes.stop(self.rpcbind)
        self.rpcbind = None
        return status
