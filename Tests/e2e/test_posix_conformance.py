"""A published volume behaves like a local POSIX file system: the same checks on tmpfs and on a volume.

Each check is a short sequence of system calls in a fresh directory, in the spirit of a POSIX
conformance suite (pjdfstest-style): results, errnos, file types, modes, owners, link counts,
inode identity and which times moved. Every check runs on a tmpfs mounted here (with the
volume's own mount flags: nosuid, nodev) and on a volume published through the real driver, in
the same run, once as root and once as an unprivileged uid; the observations must be identical.
Then unix sockets and FIFOs are exercised between processes and through a second publication
of the same volume, and a random read/write verification (fio) runs on the volume.

On the vineyardd backend the volume answers the documented errnos instead (docs/posix.md);
test_vineyardd_differences_are_the_documented_ones checks those.
"""

import ctypes
import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import csi_pb2
from harness.cluster import ETCD
from test_file_semantics import PublishedVolume

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root")

NOBODY = 65534
OTHER = 65533  # a second unprivileged user, for sticky directories and set-id clearing
GROUP = 65532

libc = ctypes.CDLL(None, use_errno=True)
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime):
    """utimensat(2) with (seconds, nanoseconds) pairs or UTIME_NOW / UTIME_OMIT."""
    def spec(value):
        return Timespec(0, value) if isinstance(value, int) else Timespec(*value)
    times = (Timespec * 2)(spec(atime), spec(mtime))
    if libc.utimensat(AT_FDCWD, os.fsencode(path), times, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


# MARK: - Recording


class Recorder:
    """Observations of one check: each a label and a result (a value or an errno name)."""

    def __init__(self):
        self.rows = []

    def call(self, label, function, *args, **kwargs):
        try:
            value = function(*args, **kwargs)
        except OSError as error:
            self.rows.append((label, errno.errorcode.get(error.errno, str(error.errno))))
            return None
        if value is None or function is os.open:
            result = "ok"  # descriptors differ from run to run
        elif isinstance(value, bytes):
            result = value.decode("latin-1")
        else:
            result = value
        self.rows.append((label, result))
        return value

    def note(self, label, value):
        self.rows.append((label, value))

    def stat(self, label, path, fields=("type", "mode", "nlink", "uid", "gid", "size", "rdev"), follow=False):
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except OSError as error:
            self.rows.append((label, errno.errorcode.get(error.errno)))
            return None
        values = {
            "type": stat.S_IFMT(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode)), "nlink": st.st_nlink,
            "uid": st.st_uid, "gid": st.st_gid, "size": st.st_size, "rdev": st.st_rdev,
        }
        self.rows.append((label, {field: values[field] for field in fields}))
        return st


def as_user(uid, gid, function, groups=()):
    """Runs `function()` in a forked child with the given credentials; returns its JSON result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            result = function()
            data = json.dumps(result).encode()
        except BaseException as error:  # the parent compares what happened
            data = json.dumps({"exception": repr(error)}).encode()
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        data = source.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def tick():
    """Lets the clock move on, so that a changed time is observable."""
    time.sleep(0.02)


# MARK: - Checks (each runs in a fresh directory `d`, as the runner's uid)


def check_long_names(r, d):
    fd = os.open(d, os.O_DIRECTORY)
    try:
        long = "n" * 255
        r.call("create 255", lambda: os.close(os.open(long, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)))
        r.call("create 256", lambda: os.close(os.open("n" * 256, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)))
        r.call("mkdir 256", os.mkdir, "m" * 256, dir_fd=fd)
        r.call("stat 256", os.stat, "n" * 256, dir_fd=fd)
        # 16 nested components of 255 bytes: a relative path of 16 * 256 - 1 = 4095 bytes.
        path = ""
        for level in range(16):
            path += ("/" if path else "") + chr(ord("a") + level) * 255
            r.call(f"mkdir depth {level + 1} ({len(path)} bytes)", os.mkdir, path, dir_fd=fd)
        r.call("stat 4095 bytes", lambda: stat.S_IFMT(os.stat(path, dir_fd=fd).st_mode))
        r.call("mkdir beyond PATH_MAX", os.mkdir, path + "/x", dir_fd=fd)
        parent = path[:-256]
        file = parent + "/" + "f" * 200
        r.call("create file at depth", lambda: os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd)))
        renamed = parent + "/" + "g" * 255
        r.call("rename at depth", os.rename, file, renamed, src_dir_fd=fd, dst_dir_fd=fd)
        deep = os.open(parent, os.O_DIRECTORY, dir_fd=fd)
        try:
            r.note("readdir at depth", sorted(name[:1] + str(len(name)) for name in os.listdir(deep)))
        finally:
            os.close(deep)
        r.call("unlink at depth", os.unlink, renamed, dir_fd=fd)
        r.call("rmdir deepest", os.rmdir, path, dir_fd=fd)
        r.call("rename a deep directory", os.rename, parent, parent[:-255] + "z" * 255, src_dir_fd=fd, dst_dir_fd=fd)
        r.call("stat renamed deep directory", lambda: stat.S_IFMT(os.stat(parent[:-255] + "z" * 255, dir_fd=fd).st_mode))
        # Deeper than PATH_MAX through a descriptor of a deep directory.
        deep = os.open(parent[:-255] + "z" * 255, os.O_DIRECTORY, dir_fd=fd)
        try:
            r.call("mkdir below a deep descriptor", os.mkdir, "q" * 255, dir_fd=deep)
            r.call("create below it", lambda: os.close(os.open("q" * 255 + "/" + "r" * 255, os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=deep)))
            r.call("stat below it", lambda: os.stat("q" * 255 + "/" + "r" * 255, dir_fd=deep).st_size)
        finally:
            os.close(deep)
    finally:
        os.close(fd)


def check_fifo(r, d):
    r.call("mkfifo", os.mkfifo, f"{d}/p", 0o644)
    r.stat("stat fifo", f"{d}/p")
    r.call("mkfifo exists", os.mkfifo, f"{d}/p", 0o644)
    r.call("chmod fifo", os.chmod, f"{d}/p", 0o600)
    r.stat("stat after chmod", f"{d}/p", ("type", "mode"))
    fd = r.call("open nonblocking reader", os.open, f"{d}/p", os.O_RDONLY | os.O_NONBLOCK)
    if fd is not None:
        writer = r.call("open writer", os.open, f"{d}/p", os.O_WRONLY | os.O_NONBLOCK)
        if writer is not None:
            r.call("write", os.write, writer, b"through the pipe")
            r.call("read", os.read, fd, 100)
            os.close(writer)
        os.close(fd)
    r.call("truncate fifo", os.truncate, f"{d}/p", 0)
    r.call("rename fifo", os.rename, f"{d}/p", f"{d}/q")
    r.stat("stat renamed", f"{d}/q", ("type", "mode"))
    r.call("unlink fifo", os.unlink, f"{d}/q")
    r.call("stat unlinked", os.lstat, f"{d}/q")


def check_fifo_between_processes(r, d):
    os.mkfifo(f"{d}/pipe", 0o666)
    pid = os.fork()
    if pid == 0:
        try:
            with open(f"{d}/pipe", "wb") as out:
                out.write(b"hello from the writer")
        finally:
            os._exit(0)
    with open(f"{d}/pipe", "rb") as source:
        r.note("read from another process", source.read().decode())
    os.waitpid(pid, 0)


def check_devices(r, d):
    for kind, label in ((stat.S_IFCHR, "char"), (stat.S_IFBLK, "block")):
        r.call(f"mknod {label}", os.mknod, f"{d}/{label}", kind | 0o640, os.makedev(1, 3))
        st = r.stat(f"stat {label}", f"{d}/{label}")
        if st is not None:
            r.note(f"{label} major/minor", [os.major(st.st_rdev), os.minor(st.st_rdev)])
            r.call(f"open {label} (nodev)", lambda: os.close(os.open(f"{d}/{label}", os.O_RDONLY)))
            r.call(f"chown {label}", os.chown, f"{d}/{label}", NOBODY, NOBODY)
            r.stat(f"stat {label} after chown", f"{d}/{label}", ("type", "uid", "gid", "rdev"))
            r.call(f"unlink {label}", os.unlink, f"{d}/{label}")
    r.call("mknod regular", os.mknod, f"{d}/regular", stat.S_IFREG | 0o600)
    r.stat("stat regular", f"{d}/regular")
    r.call("mknod fifo", os.mknod, f"{d}/fifo", stat.S_IFIFO | 0o600)
    r.stat("stat mknod fifo", f"{d}/fifo")


def check_socket(r, d):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        r.call("bind", server.bind, f"{d}/s")
        server.listen(1)
        r.stat("stat socket", f"{d}/s", ("type", "nlink", "uid", "gid", "size"))
        r.call("bind again", socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind, f"{d}/s")
        pid = os.fork()
        if pid == 0:
            try:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.connect(f"{d}/s")
                client.sendall(b"ping")
                client.close()
            finally:
                os._exit(0)
        connection, _ = server.accept()
        r.note("received from another process", connection.recv(10).decode())
        connection.close()
        os.waitpid(pid, 0)
        r.call("chmod socket", os.chmod, f"{d}/s", 0o700)
        r.stat("stat socket after chmod", f"{d}/s", ("type", "mode"))
        r.call("unlink socket", os.unlink, f"{d}/s")
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        r.call("connect after unlink", client.connect, f"{d}/s")
        client.close()
    finally:
        server.close()


def check_hard_links(r, d):
    Path(f"{d}/a").write_bytes(b"first")
    before = os.lstat(f"{d}/a")
    tick()
    r.call("link", os.link, f"{d}/a", f"{d}/b")
    a, b = r.stat("stat a", f"{d}/a"), r.stat("stat b", f"{d}/b")
    r.note("same inode", a.st_ino == b.st_ino)
    r.note("link moved ctime", a.st_ctime_ns > before.st_ctime_ns)
    r.call("link exists", os.link, f"{d}/a", f"{d}/b")
    r.call("link missing", os.link, f"{d}/missing", f"{d}/c")
    os.mkdir(f"{d}/dir")
    r.call("link directory", os.link, f"{d}/dir", f"{d}/dirlink")
    r.call("link into missing directory", os.link, f"{d}/a", f"{d}/nodir/x")
    r.call("link third", os.link, f"{d}/b", f"{d}/dir/c")
    r.stat("stat a with three", f"{d}/a", ("nlink",))
    with open(f"{d}/b", "r+b") as handle:
        handle.write(b"SECOND")
    r.note("write through b read through a", Path(f"{d}/a").read_bytes().decode())
    r.note("read through c", Path(f"{d}/dir/c").read_bytes().decode())
    r.stat("stat a after write", f"{d}/a", ("nlink", "size"))
    with open(f"{d}/a", "ab") as handle:
        handle.write(b"+tail")
    r.note("append through a read through b", Path(f"{d}/b").read_bytes().decode())
    r.call("chmod b", os.chmod, f"{d}/b", 0o600)
    r.stat("mode through a", f"{d}/a", ("mode",))
    r.call("rename a onto b (same file)", os.rename, f"{d}/a", f"{d}/b")
    r.note("both remain", sorted(os.listdir(d)))
    r.call("unlink a", os.unlink, f"{d}/a")
    r.stat("stat b after unlink a", f"{d}/b", ("nlink", "size"))
    r.note("b content", Path(f"{d}/b").read_bytes().decode())
    r.call("rename c to a", os.rename, f"{d}/dir/c", f"{d}/a")
    st_b, st_a = r.stat("b", f"{d}/b", ("nlink",)), r.stat("a", f"{d}/a", ("nlink",))
    r.note("still one inode", st_a.st_ino == st_b.st_ino)
    Path(f"{d}/other").write_bytes(b"other")
    r.call("rename other over a", os.rename, f"{d}/other", f"{d}/a")
    r.stat("b after a replaced", f"{d}/b", ("nlink", "size"))
    r.note("a content", Path(f"{d}/a").read_bytes().decode())
    with open(f"{d}/b", "rb") as kept:
        r.call("unlink last name while open", os.unlink, f"{d}/b")
        r.note("read unlinked open file", kept.read().decode())
        r.note("fstat unlinked", os.fstat(kept.fileno()).st_nlink)
    os.symlink("target", f"{d}/sym")
    r.call("link a symbolic link", os.link, f"{d}/sym", f"{d}/sym2", follow_symlinks=False)
    r.stat("symlink link count", f"{d}/sym2", ("type", "nlink"))
    r.note("readlink second name", os.readlink(f"{d}/sym2"))
    os.mkfifo(f"{d}/fifo")
    r.call("link a fifo", os.link, f"{d}/fifo", f"{d}/fifo2")
    r.stat("fifo link count", f"{d}/fifo", ("type", "nlink"))


def check_truncate_through_link(r, d):
    Path(f"{d}/x").write_bytes(b"0123456789")
    os.link(f"{d}/x", f"{d}/y")
    r.call("truncate y", os.truncate, f"{d}/y", 4)
    r.stat("x after truncate", f"{d}/x", ("size", "nlink"))
    r.note("x bytes", Path(f"{d}/x").read_bytes().decode())
    with open(f"{d}/x", "wb") as handle:
        handle.write(b"replaced")
    r.note("y after O_TRUNC write of x", Path(f"{d}/y").read_bytes().decode())


def check_modes_and_owners(r, d):
    old = os.umask(0o022)
    try:
        r.call("create 0777", lambda: os.close(os.open(f"{d}/f", os.O_CREAT | os.O_WRONLY, 0o777)))
        r.stat("umask applied", f"{d}/f", ("type", "mode", "uid", "gid"))
        r.call("mkdir 0777", os.mkdir, f"{d}/sub", 0o777)
        r.stat("umask applied to directory", f"{d}/sub", ("type", "mode", "uid", "gid", "nlink"))
        os.umask(0)
        r.call("create 07777", lambda: os.close(os.open(f"{d}/g", os.O_CREAT | os.O_WRONLY, 0o7777)))
        r.stat("set-id bits on create", f"{d}/g", ("mode",))
        r.call("symlink", os.symlink, "somewhere", f"{d}/l")
        r.stat("stat symlink", f"{d}/l", ("type", "mode", "size", "nlink"))
    finally:
        os.umask(old)
    r.call("chmod 07755", os.chmod, f"{d}/f", 0o7755)
    r.stat("after chmod", f"{d}/f", ("mode",))
    if os.geteuid() == 0:
        r.call("chmod dir setgid", os.chmod, f"{d}/sub", 0o2775)
        r.call("chown dir group", os.chown, f"{d}/sub", -1, GROUP)
        r.call("create in setgid dir", lambda: os.close(os.open(f"{d}/sub/h", os.O_CREAT | os.O_WRONLY, 0o644)))
        r.stat("inherits group", f"{d}/sub/h", ("gid", "mode"))
        r.call("mkdir in setgid dir", os.mkdir, f"{d}/sub/i", 0o755)
        r.stat("inherits group and bit", f"{d}/sub/i", ("gid", "mode"))
        r.call("mkfifo in setgid dir", os.mkfifo, f"{d}/sub/j", 0o644)
        r.stat("fifo inherits group", f"{d}/sub/j", ("gid", "mode"))
    else:
        r.call("chown to root refused", os.chown, f"{d}/f", 0, 0)
        r.call("chmod others' file", os.chmod, d + "/..", 0o777)


def check_setid_clearing(r, d):
    path = f"{d}/suid"
    Path(path).write_bytes(b"x")
    os.chmod(path, 0o6777)
    r.stat("before", path, ("mode",))
    if os.geteuid() == 0:
        os.chmod(d, 0o777)
        result = as_user(OTHER, OTHER, lambda: [Path(path).open("ab").write(b"y"), oct(stat.S_IMODE(os.stat(path).st_mode))])
        r.note("write by non-owner", result)
        r.stat("after non-owner write", path, ("mode", "size"))
        os.chmod(path, 0o6755)
        r.call("chown by root", os.chown, path, NOBODY, -1)
        r.stat("after chown", path, ("mode", "uid"))
        os.chmod(path, 0o6777)
        r.call("chown to same owner", os.chown, path, NOBODY, NOBODY)
        r.stat("after chown to same", path, ("mode", "uid", "gid"))
        os.chmod(path, 0o6777)
        r.call("truncate by root", os.truncate, path, 0)
        r.stat("after truncate by root", path, ("mode", "size"))
        os.chmod(path, 0o2745)
        r.call("chown group only", os.chown, path, -1, GROUP)
        r.stat("after group change", path, ("mode", "gid"))
    else:
        r.call("owner write", lambda: Path(path).open("ab").write(b"y"))
        r.stat("after owner write", path, ("mode", "size"))
        r.call("chmod setgid foreign group", os.chmod, path, 0o2755)
        r.stat("setgid dropped for a foreign group", path, ("mode",))


def check_sticky(r, d):
    if os.geteuid() != 0:
        os.chmod(d, 0o1777)
        Path(f"{d}/mine").write_bytes(b"m")
        r.call("owner unlinks in sticky dir", os.unlink, f"{d}/mine")
        r.stat("sticky dir", d, ("mode",))
        return
    os.chmod(d, 0o1777)
    r.stat("sticky dir", d, ("mode",))
    r.note("create as nobody", as_user(NOBODY, NOBODY, lambda: Path(f"{d}/nobodys").write_bytes(b"n") and None))
    r.note("create second as nobody", as_user(NOBODY, NOBODY, lambda: Path(f"{d}/nobodys2").write_bytes(b"n") and None))
    os.mkdir(f"{d}/sub")
    os.chown(f"{d}/sub", NOBODY, NOBODY)

    def other_tries():
        rows = []
        for label, call in (
            ("unlink", lambda: os.unlink(f"{d}/nobodys")),
            ("rename away", lambda: os.rename(f"{d}/nobodys", f"{d}/stolen")),
            ("rename over", lambda: (Path(f"{d}/others").write_bytes(b"o"), os.rename(f"{d}/others", f"{d}/nobodys2"))),
            ("rmdir", lambda: os.rmdir(f"{d}/sub")),
            ("write", lambda: Path(f"{d}/nobodys").open("ab").write(b"x")),
        ):
            try:
                call()
                rows.append([label, "ok"])
            except OSError as error:
                rows.append([label, errno.errorcode[error.errno]])
        return rows

    r.note("other user in sticky dir", as_user(OTHER, OTHER, other_tries))
    r.note("owner unlinks", as_user(NOBODY, NOBODY, lambda: os.unlink(f"{d}/nobodys")))
    r.call("root unlinks", os.unlink, f"{d}/nobodys2")
    r.note("left", sorted(os.listdir(d)))


def check_times(r, d):
    path = f"{d}/t"
    Path(path).write_bytes(b"x")
    utimensat(path, (1000, 5), (2000, 7))
    st = os.stat(path)
    r.note("explicit times", [st.st_atime_ns, st.st_mtime_ns])
    utimensat(path, UTIME_OMIT, (3000, 9))
    st = os.stat(path)
    r.note("atime omitted", [st.st_atime_ns, st.st_mtime_ns])
    utimensat(path, (4000, 11), UTIME_OMIT)
    st = os.stat(path)
    r.note("mtime omitted", [st.st_atime_ns, st.st_mtime_ns])
    before = time.time_ns()
    utimensat(path, UTIME_NOW, UTIME_OMIT)
    st = os.stat(path)
    r.note("atime now", [st.st_atime_ns >= before - 10_000_000, st.st_mtime_ns])
    utimensat(path, UTIME_OMIT, UTIME_NOW)
    st = os.stat(path)
    r.note("mtime now", [st.st_mtime_ns >= before - 10_000_000, st.st_atime_ns >= before - 10_000_000])
    r.call("utime on a missing file", utimensat, f"{d}/missing", UTIME_NOW, UTIME_NOW)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
        os.chmod(path, 0o666)

        def other():
            rows = []
            for label, times in (("now", (UTIME_NOW, UTIME_NOW)), ("explicit", ((1, 0), (1, 0))), ("omit", (UTIME_OMIT, UTIME_OMIT))):
                try:
                    utimensat(path, *times)
                    rows.append([label, "ok"])
                except OSError as error:
                    rows.append([label, errno.errorcode[error.errno]])
            return rows

        r.note("utimensat by a writer who is not the owner", as_user(OTHER, OTHER, other))


def check_ctime_updates(r, d):
    path = f"{d}/c"
    Path(path).write_bytes(b"x")

    def moved(label, action, target=path):
        before = os.lstat(target)
        tick()
        r.call(label, action)
        after = os.lstat(target)
        r.note(f"{label}: ctime moved", after.st_ctime_ns > before.st_ctime_ns)
        r.note(f"{label}: mtime moved", after.st_mtime_ns > before.st_mtime_ns)

    moved("chmod", lambda: os.chmod(path, 0o640))
    moved("chown", lambda: os.chown(path, os.geteuid(), os.getegid()))
    moved("link", lambda: os.link(path, f"{d}/c2"))
    moved("unlink other name", lambda: os.unlink(f"{d}/c2"))
    moved("write", lambda: Path(path).open("ab").write(b"more"))
    moved("truncate", lambda: os.truncate(path, 1))
    before = os.lstat(path)
    tick()
    r.call("rename", os.rename, path, f"{d}/c3")
    after = os.lstat(f"{d}/c3")
    r.note("rename: ctime moved", after.st_ctime_ns > before.st_ctime_ns)
    r.note("rename: mtime kept", after.st_mtime_ns == before.st_mtime_ns)
    os.mkdir(f"{d}/dir")
    before = os.lstat(f"{d}/dir")
    tick()
    r.call("rename directory", os.rename, f"{d}/dir", f"{d}/dir2")
    r.note("rename directory: ctime moved", os.lstat(f"{d}/dir2").st_ctime_ns > before.st_ctime_ns)
    before = os.lstat(f"{d}/dir2")
    tick()
    r.call("refused rename", lambda: as_user(OTHER, OTHER, lambda: os.rename(f"{d}/dir2", f"{d}/dir3")) if os.geteuid() == 0 else None)
    r.note("refused rename: ctime kept", os.lstat(f"{d}/dir2").st_ctime_ns == before.st_ctime_ns)
    directory_before = os.lstat(d)
    tick()
    Path(f"{d}/new").write_bytes(b"")
    directory_after = os.lstat(d)
    r.note("create moves the directory's mtime", directory_after.st_mtime_ns > directory_before.st_mtime_ns)
    os.mkfifo(f"{d}/fifo")
    moved("chmod fifo", lambda: os.chmod(f"{d}/fifo", 0o600), target=f"{d}/fifo")
    os.symlink("x", f"{d}/sym")
    moved("lchown symlink", lambda: os.lchown(f"{d}/sym", os.geteuid(), os.getegid()), target=f"{d}/sym")


def check_permissions(r, d):
    Path(f"{d}/private").write_bytes(b"secret")
    os.chmod(f"{d}/private", 0o600)
    Path(f"{d}/public").write_bytes(b"open")
    os.chmod(f"{d}/public", 0o644)
    os.mkdir(f"{d}/closed", 0o700)
    if os.geteuid() == 0:
        def other():
            rows = []
            for label, call in (
                ("read private", lambda: open(f"{d}/private", "rb").read()),
                ("read public", lambda: open(f"{d}/public", "rb").read().decode()),
                ("write public", lambda: open(f"{d}/public", "ab")),
                ("list closed", lambda: os.listdir(f"{d}/closed")),
                ("create in d", lambda: open(f"{d}/other", "wb")),
                ("chmod public", lambda: os.chmod(f"{d}/public", 0o777)),
                ("chown public", lambda: os.chown(f"{d}/public", OTHER, OTHER)),
                ("mknod fifo in d", lambda: os.mkfifo(f"{d}/ofifo")),
                ("link public", lambda: os.link(f"{d}/public", f"{d}/plink")),
            ):
                try:
                    value = call()
                    rows.append([label, value if isinstance(value, str) else "ok"])
                except OSError as error:
                    rows.append([label, errno.errorcode[error.errno]])
            return rows
        os.chmod(d, 0o755)
        r.note("other user", as_user(OTHER, OTHER, other))
    else:
        r.call("chmod 000 then read", lambda: (os.chmod(f"{d}/private", 0), open(f"{d}/private", "rb")))
        r.call("mknod char unprivileged", os.mknod, f"{d}/dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        r.call("mkfifo unprivileged", os.mkfifo, f"{d}/fifo")
        r.stat("fifo owner", f"{d}/fifo", ("uid", "gid", "mode"))


def check_namespace_errors(r, d):
    os.mkdir(f"{d}/dir")
    os.mkdir(f"{d}/full")
    Path(f"{d}/full/x").write_bytes(b"x")
    os.mkdir(f"{d}/empty")
    Path(f"{d}/file").write_bytes(b"f")
    r.call("mkdir existing", os.mkdir, f"{d}/dir")
    r.call("mkdir over a file", os.mkdir, f"{d}/file")
    r.call("create exclusive existing", os.open, f"{d}/file", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    r.call("open directory for writing", os.open, f"{d}/dir", os.O_WRONLY)
    r.call("open O_DIRECTORY on a file", os.open, f"{d}/file", os.O_RDONLY | os.O_DIRECTORY)
    r.call("file as a directory", os.stat, f"{d}/file/x")
    r.call("rmdir non-empty", os.rmdir, f"{d}/full")
    r.call("rmdir a file", os.rmdir, f"{d}/file")
    r.call("unlink a directory", os.unlink, f"{d}/dir")
    r.call("rename directory into itself", os.rename, f"{d}/dir", f"{d}/dir/sub")
    r.call("rename directory over non-empty", os.rename, f"{d}/dir", f"{d}/full")
    r.call("rename file over directory", os.rename, f"{d}/file", f"{d}/empty")
    r.call("rename directory over file", os.rename, f"{d}/dir", f"{d}/file")
    r.call("rename directory over empty", os.rename, f"{d}/dir", f"{d}/empty")
    r.note("after renames", sorted(os.listdir(d)))
    r.call("rename missing", os.rename, f"{d}/missing", f"{d}/other")
    r.call("truncate negative", os.truncate, f"{d}/file", -1)
    os.symlink("loop", f"{d}/loop")
    r.call("symlink loop", os.stat, f"{d}/loop")
    os.symlink("file", f"{d}/tofile")
    r.call("chmod through a symlink", os.chmod, f"{d}/tofile", 0o600)
    r.stat("target mode", f"{d}/file", ("mode",))
    r.stat("link itself", f"{d}/tofile", ("type", "mode"))
    r.call("open O_NOFOLLOW on a symlink", os.open, f"{d}/tofile", os.O_RDONLY | os.O_NOFOLLOW)
    r.call("symlink over existing", os.symlink, "x", f"{d}/file")
    r.call("readlink on a file", os.readlink, f"{d}/file")
    before = os.lstat(f"{d}/empty")
    os.mkdir(f"{d}/moving")
    tick()
    r.call("rename directory across", os.rename, f"{d}/moving", f"{d}/empty/moved")
    r.note("target directory mtime moved", os.lstat(f"{d}/empty").st_mtime_ns > before.st_mtime_ns)
    r.stat("moved directory", f"{d}/empty/moved", ("type", "mode"))
    r.note("listing", sorted(os.listdir(d)))


def fallocate(fd, mode, offset, length):
    """fallocate(2) (Python's os module offers only posix_fallocate, which glibc can emulate)."""
    if libc.fallocate(fd, mode, ctypes.c_long(offset), ctypes.c_long(length)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def check_fallocate(r, d):
    path = f"{d}/f"
    Path(path).write_bytes(b"abcdefgh" * 1024)
    fd = os.open(path, os.O_RDWR)
    try:
        r.call("allocate beyond the end", fallocate, fd, 0, 8192, 4096)
        r.note("size after allocate", os.fstat(fd).st_size)
        r.call("keep size", fallocate, fd, 1, 12288, 4096)
        r.note("size after keep size", os.fstat(fd).st_size)
        r.call("punch hole", fallocate, fd, 3, 100, 50)
        r.call("punch hole without keep size", fallocate, fd, 2, 0, 10)
        r.call("zero range", fallocate, fd, 0x10, 0, 10)
        r.call("collapse range", fallocate, fd, 0x08, 0, 4096)
        r.call("zero length", fallocate, fd, 0, 0, 0)
        r.call("read-only descriptor", lambda: fallocate(os.open(path, os.O_RDONLY), 0, 0, 10))
    finally:
        os.close(fd)
    data = Path(path).read_bytes()
    r.note("size", len(data))
    r.note("hole is zeros", data[100:150] == bytes(50))
    r.note("around the hole", [data[:100] == (b"abcdefgh" * 13)[:100], data[150:8192] == (b"abcdefgh" * 1024)[150:]])
    r.note("allocated tail is zeros", data[8192:] == bytes(4096))
    r.note("posix_fallocate", os.posix_fallocate(os.open(path, os.O_WRONLY), 0, 20000))
    r.note("size after posix_fallocate", os.stat(path).st_size)


def check_more_times_and_links(r, d):
    path = f"{d}/t"
    Path(path).write_bytes(b"")

    def moved(label, action, target):
        before = os.lstat(target)
        tick()
        r.call(label, action)
        after = os.lstat(target)
        r.note(f"{label}: times moved", [after.st_ctime_ns > before.st_ctime_ns, after.st_mtime_ns > before.st_mtime_ns])

    moved("O_TRUNC of an empty file", lambda: os.close(os.open(path, os.O_WRONLY | os.O_TRUNC)), path)
    moved("O_CREAT of an existing file", lambda: os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)), path)
    r.stat("mode kept by O_CREAT", path, ("mode",))
    moved("chown -1 -1", lambda: os.chown(path, -1, -1), path)
    moved("mkdir in d", lambda: os.mkdir(f"{d}/sub"), d)
    moved("rmdir in d", lambda: os.rmdir(f"{d}/sub"), d)
    moved("symlink in d", lambda: os.symlink("x", f"{d}/sym"), d)
    moved("mkfifo in d", lambda: os.mkfifo(f"{d}/fifo"), d)
    moved("unlink in d", lambda: os.unlink(f"{d}/fifo"), d)
    if os.geteuid() == 0:
        os.mknod(f"{d}/block", stat.S_IFBLK | 0o644, os.makedev(7, 1))
        r.call("link a block device", os.link, f"{d}/block", f"{d}/block2")
        r.stat("block device links", f"{d}/block2", ("type", "nlink", "rdev"))
        r.call("chown through one name", os.chown, f"{d}/block2", NOBODY, NOBODY)
        r.stat("owner through the other", f"{d}/block", ("uid", "gid", "nlink"))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(f"{d}/sock")
        r.call("link a socket", os.link, f"{d}/sock", f"{d}/sock2")
        r.stat("socket links", f"{d}/sock", ("type", "nlink"))
        server.listen(1)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        r.call("connect through the second name", client.connect, f"{d}/sock2")
        client.close()
    finally:
        server.close()


def check_directory_link_counts(r, d):
    """A directory's st_nlink is 2 plus its subdirectories, through mkdir, rename and rmdir (as
    pjdfstest's rename/24.t checks); files and symbolic links do not count."""
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    r.call("mkdir a", os.mkdir, a, 0o755)
    r.call("mkdir b", os.mkdir, b, 0o755)
    r.call("mkdir a/x", os.mkdir, os.path.join(a, "x"), 0o755)
    r.call("file in a", lambda: open(os.path.join(a, "f"), "w").close())
    r.call("symlink in a", os.symlink, "x", os.path.join(a, "l"))
    r.stat("after mkdir: a", a, fields=("nlink",))
    r.stat("after mkdir: b", b, fields=("nlink",))
    r.call("rename a/x b/y", os.rename, os.path.join(a, "x"), os.path.join(b, "y"))
    r.stat("after rename: a", a, fields=("nlink",))
    r.stat("after rename: b", b, fields=("nlink",))
    r.call("mkdir b/z", os.mkdir, os.path.join(b, "z"), 0o755)
    r.call("rename b/z over b/y", os.rename, os.path.join(b, "z"), os.path.join(b, "y"))
    r.stat("after rename over: b", b, fields=("nlink",))
    for index in range(20):
        os.mkdir(os.path.join(b, f"many{index}"))
    r.stat("after 20 more: b", b, fields=("nlink",))
    r.call("rmdir b/y", os.rmdir, os.path.join(b, "y"))
    r.stat("after rmdir: b", b, fields=("nlink",))
    r.stat("the check's directory", d, fields=("nlink",))


def check_rename_over_a_link_and_huge_sizes(r, d):
    """Renaming over one name of a multiply linked file drops its link count and moves its
    change time (pjdfstest's rename/23.t); truncating to a size no memory could hold either
    succeeds (a sparse file) or answers EFBIG, never ENOSPC (truncate/12.t accepts both)."""
    src, dst, other = f"{d}/src", f"{d}/dst", f"{d}/dst-link"
    for path in (src, dst):
        with open(path, "w") as stream:
            stream.write(path[-3:])
    r.call("link dst", os.link, dst, other)
    before = os.lstat(other).st_ctime_ns
    tick()
    r.call("rename src over dst", os.rename, src, dst)
    r.stat("remaining link", other, fields=("nlink", "size"))
    r.note("remaining link's ctime moved", os.lstat(other).st_ctime_ns > before)
    big = f"{d}/big"
    open(big, "w").close()
    try:
        os.truncate(big, 999999999999999)
        outcome = "ok" if os.stat(big).st_size == 999999999999999 else "wrong size"
    except OSError as error:
        outcome = "ok" if error.errno in (errno.EFBIG, errno.EINVAL) else errno.errorcode[error.errno]
    r.note("truncate to 999999999999999: done or EFBIG", outcome)


CHECKS = [
    check_long_names, check_fifo, check_fifo_between_processes, check_devices, check_socket, check_hard_links,
    check_truncate_through_link, check_modes_and_owners, check_setid_clearing, check_sticky, check_times,
    check_ctime_updates, check_permissions, check_namespace_errors, check_fallocate,
    check_more_times_and_links, check_directory_link_counts, check_rename_over_a_link_and_huge_sizes,
]


CHECKS_BY_NAME = {check.__name__: check for check in CHECKS}


def run_checks(base, uid):
    """Runs every check in a fresh directory under `base` as `uid`; returns {check: rows}."""
    results = {}
    for check in CHECKS:
        directory = base / f"{check.__name__}-{uid}"
        directory.mkdir()
        os.chown(directory, uid, uid)

        def run(check=check, directory=directory):
            recorder = Recorder()
            os.umask(0o022)
            try:
                check(recorder, str(directory))
            except Exception as error:  # an unexpected failure is an observation too
                recorder.note("raised", repr(error).replace(str(directory), "<d>"))
            return recorder.rows

        results[check.__name__] = json.loads(json.dumps(run() if uid == 0 else as_user(uid, uid, run)))
    return results


def differences(expected, actual):
    rows = []
    for check, expected_rows in expected.items():
        actual_rows = actual.get(check, [])
        for index in range(max(len(expected_rows), len(actual_rows))):
            e = expected_rows[index] if index < len(expected_rows) else None
            a = actual_rows[index] if index < len(actual_rows) else None
            if e != a:
                rows.append(f"{check}: tmpfs {e} / volume {a}")
    return rows


# MARK: - Fixtures


def traversable(path):
    """Lets other users reach `path` (pytest's temporary directories are private to root)."""
    for directory in [path, *path.parents]:
        if directory == Path("/tmp") or directory == Path("/"):
            break
        os.chmod(directory, os.stat(directory).st_mode | 0o711)


def private_directory(label):
    """A directory of this run only: pytest's numbered temporary directories are rotated by
    any other pytest session of the machine, which may remove them while this one runs."""
    return Path(tempfile.mkdtemp(prefix=f"vineyard-csi-posix-{label}-"))


def published_volume(backend):
    """A volume of `backend` published through the real driver, reachable by every user."""
    workdir = private_directory(backend)
    published = PublishedVolume(workdir, backend)
    try:
        published.start()
        traversable(published.target)
        yield published
    finally:
        published.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def embedded():
    yield from published_volume("embedded")


@pytest.fixture(scope="module")
def tmpfs():
    path = private_directory("tmpfs")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,mode=0777", "tmpfs", str(path)], check=True)
    traversable(path)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        os.rmdir(path)


def mount_flags(path):
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return set(fields[5].split(",")) & {"nosuid", "nodev", "noexec", "ro"}
    return None


@pytest.mark.parametrize("uid", [0, NOBODY], ids=["root", "unprivileged"])
def test_checks_match_tmpfs(embedded, tmpfs, uid):
    assert mount_flags(embedded.target) == mount_flags(tmpfs), "compare like with like: same nosuid/nodev"
    run = uuid.uuid4().hex[:6]
    os.chmod(embedded.target, 0o777)
    (tmpfs / run).mkdir(mode=0o777)
    (embedded.target / run).mkdir(mode=0o777)
    expected = run_checks(tmpfs / run, uid)
    actual = run_checks(embedded.target / run, uid)
    total = sum(len(rows) for rows in expected.values())
    found = differences(expected, actual)
    print(f"\nPOSIX checks as uid {uid}: {total} observations, {total - len(found)} same as tmpfs, {len(found)} differ")
    assert not found, "\n".join(found)
    # Every check observed something, and the checks saw what tmpfs does (not only errors).
    assert all(expected.values()) and total > 150


def second_publication(volume, target):
    """Publishes `volume` a second time (another pod on the node): a bind mount of its staging."""
    volume.clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
        volume_id=volume.volume.volume_id, staging_target_path=str(volume.staging), target_path=str(target),
        volume_capability=csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(),
            access_mode=csi_pb2.VolumeCapability.AccessMode(mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER)),
        volume_context=volume.volume.volume_context))


def test_socket_fifo_and_links_through_a_second_publication(embedded):
    other = embedded.workdir / "target-2"
    second_publication(embedded, other)
    traversable(other)
    try:
        name = f"s-{uuid.uuid4().hex[:6]}"
        (embedded.target / name).mkdir(mode=0o777)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(embedded.target / name / "sidecar.sock"))
        server.listen(2)
        os.chmod(embedded.target / name / "sidecar.sock", 0o777)

        def talk(path):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)
            client.sendall(b"hello")
            client.close()

        for path in (embedded.target / name / "sidecar.sock", other / name / "sidecar.sock"):
            # An unprivileged process of another pod connects through its own publication.
            result = as_user(NOBODY, NOBODY, lambda path=path: talk(str(path)))
            assert result is None, result
            connection, _ = server.accept()
            assert connection.recv(10) == b"hello"
            connection.close()
        server.close()

        os.mkfifo(embedded.target / name / "pipe", 0o666)
        pid = os.fork()
        if pid == 0:
            try:
                with open(other / name / "pipe", "wb") as out:
                    out.write(b"through the other publication")
            finally:
                os._exit(0)
        with open(embedded.target / name / "pipe", "rb") as source:
            assert source.read() == b"through the other publication"
        os.waitpid(pid, 0)

        (embedded.target / name / "a").write_bytes(b"one")
        # link(2) between two mounts is EXDEV even for bind mounts of one file system; a link
        # made in one publication shows in the other.
        with pytest.raises(OSError) as crossing:
            os.link(embedded.target / name / "a", other / name / "b")
        assert crossing.value.errno == errno.EXDEV
        os.link(embedded.target / name / "a", embedded.target / name / "b")
        assert os.stat(other / name / "a").st_nlink == 2
        (other / name / "b").write_bytes(b"two")
        assert (embedded.target / name / "a").read_bytes() == b"two"
        assert os.stat(embedded.target / name / "a").st_ino == os.stat(other / name / "b").st_ino
    finally:
        embedded.clients.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=embedded.volume.volume_id, target_path=str(other)))


def test_hard_links_count_bytes_once(embedded):
    name = f"q-{uuid.uuid4().hex[:6]}"
    directory = embedded.target / name
    directory.mkdir()
    before = os.statvfs(embedded.target)
    (directory / "big").write_bytes(os.urandom(4 << 20))
    for index in range(3):
        os.link(directory / "big", directory / f"link-{index}")
    after = os.statvfs(embedded.target)
    used = (before.f_bfree - after.f_bfree) * after.f_frsize
    assert 4 << 20 <= used < 5 << 20, used  # the bytes once, not four times
    os.unlink(directory / "big")
    os.unlink(directory / "link-0")
    assert os.stat(directory / "link-1").st_nlink == 2
    assert (directory / "link-2").read_bytes() == (directory / "link-1").read_bytes()


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio not installed")
@pytest.mark.parametrize("engine", ["psync", "mmap", "libaio", "io_uring", "falloc"])
def test_random_reads_and_writes_verify(embedded, engine):
    """fio's random read/write mix, verified by checksum, through each I/O path of the volume."""
    directory = embedded.target / f"fio-{engine}-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    verify = [] if engine == "falloc" else ["--verify=crc32c", "--do_verify=1", "--verify_state_save=0"]
    result = subprocess.run(
        ["fio", "--name=verify", f"--directory={directory}", "--rw=randrw", "--bs=4k", "--size=8m",
         f"--ioengine={engine}", "--iodepth=8", "--numjobs=1", *verify],
        capture_output=True, text=True, timeout=300)
    if engine == "io_uring" and "io_uring" in result.stderr and "not supported" in result.stderr.lower():
        pytest.skip("io_uring is not available to this process")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "err= 0" in result.stdout, result.stdout


# MARK: - vineyardd backend

# What a vineyardd volume does differently (docs/posix.md): hard links answer link(2)'s EPERM,
# as a vineyardd cannot list an object's names; and a directory's times and a renamed file's
# change time stay as they were, as every metadata edit there is a new object and an etcd
# commit; a directory's link count is 2, as counting subdirectories would list every name
# below it. Every other check behaves as on tmpfs.
VINEYARDD_REFUSES = {
    ("check_hard_links", "link"): "EPERM",
    ("check_ctime_updates", "link"): "EPERM",
    ("check_more_times_and_links", "link a block device"): "EPERM",
    ("check_more_times_and_links", "link a socket"): "EPERM",
}
VINEYARDD_KEEPS_TIMES = {
    ("check_ctime_updates", "rename: ctime moved"): False,
    ("check_ctime_updates", "create moves the directory's mtime"): False,
    ("check_namespace_errors", "target directory mtime moved"): False,
    ("check_more_times_and_links", "mkdir in d: times moved"): [False, False],
}
VINEYARDD_DIRECTORY_LINKS = {
    ("check_directory_link_counts", "after rename: b"): {"nlink": 2},
    ("check_directory_link_counts", "after 20 more: b"): {"nlink": 2},
}
VINEYARDD_DIFFER = {
    "check_hard_links", "check_truncate_through_link", "check_ctime_updates", "check_more_times_and_links",
    "check_namespace_errors", "check_directory_link_counts", "check_rename_over_a_link_and_huge_sizes",
}


@pytest.fixture(scope="module")
def vineyardd_volume():
    if ETCD is None:
        pytest.skip("etcd not installed (Debian package etcd-server; scripts/install-deps.sh)")
    yield from published_volume("vineyardd")


def test_vineyardd_differences_are_the_documented_ones(vineyardd_volume, tmpfs):
    run = uuid.uuid4().hex[:6]
    (tmpfs / run).mkdir(mode=0o777)
    (vineyardd_volume.target / run).mkdir(mode=0o777)
    expected = run_checks(tmpfs / run, 0)
    actual = run_checks(vineyardd_volume.target / run, 0)
    found = differences(expected, actual)
    total = sum(len(rows) for rows in expected.values())
    print(f"\nvineyardd backend: {total} observations, {len(found)} differ from tmpfs")
    print("\n".join(found))
    observed = {(check, row[0]): row[1] for check, rows in actual.items() for row in rows}
    for key, answer in {**VINEYARDD_REFUSES, **VINEYARDD_KEEPS_TIMES, **VINEYARDD_DIRECTORY_LINKS}.items():
        assert observed.get(key) == answer, (key, observed.get(key))
    for check in set(CHECKS_BY_NAME) - VINEYARDD_DIFFER:
        assert actual[check] == expected[check], check
