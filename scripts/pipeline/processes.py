"""Starting and stopping the servers the variants run (vineyardd, vineyard-csi, ganesha, rpcbind)."""

import ctypes
import signal
import subprocess

_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """A preexec_fn: the child gets SIGTERM when the thread that started it ends, so a benchmark
    killed with SIGKILL leaves no server behind holding a port."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(process, timeout=20):
    """SIGTERM, SIGKILL after `timeout` seconds; always by PID. Returns the exit status (None if
    there was no process)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
