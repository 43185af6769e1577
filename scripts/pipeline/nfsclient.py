"""A user-space NFS client for the pipeline's steps: libnfs (Debian's libnfs13) through ctypes.

The machines this benchmark runs on have no kernel NFS client, so a step cannot `mount -t nfs`.
Instead each step connects to the export itself:

    export = Export("nfs://127.0.0.1/pipeline?version=4&nfsport=20490")
    with export.open("x_train.pkl", "wb") as handle:
        frame.to_pickle(handle)
    with export.open("x_train.pkl", "rb") as handle:
        frame = pd.read_pickle(handle)

`open` returns an io.BufferedWriter / io.BufferedReader over `NFSFile`, a raw file that reads and
writes with libnfs's synchronous pread/pwrite (one READ or WRITE of at most the server's
rsize/wsize in flight at a time). Closing a written file commits it (nfs_fsync, an NFS COMMIT)
before closing, which is what the kernel client's close-to-open consistency does at close().
"""

import ctypes
import ctypes.util
import errno
import io
import os

import numpy as np

DEFAULT_BUFFER = 8 << 20
# The largest READ/WRITE a call sends when libnfs does not know the server's (its NFSv4 code
# leaves rsize/wsize at 0): 1 MiB, the Linux kernel client's largest rsize/wsize and the
# MaxRSize/MaxWSize the pipeline's ganesha is configured with.
DEFAULT_IO_SIZE = 1 << 20
_LIBRARY_NAMES = ("libnfs.so.13", ctypes.util.find_library("nfs") or "libnfs.so")


class NFSError(OSError):
    pass


class _URL(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char_p), ("path", ctypes.c_char_p), ("file", ctypes.c_char_p)]


class _Stat64(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size", "blksize", "blocks",
        "atime", "mtime", "ctime", "atime_nsec", "mtime_nsec", "ctime_nsec", "used")]


def _load():
    for name in _LIBRARY_NAMES:
        try:
            library = ctypes.CDLL(name, use_errno=True)
            break
        except OSError:
            continue
    else:
        raise NFSError("libnfs is not installed (Debian: apt-get install libnfs13)")
    context, handle, u64, cstr = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_char_p
    signatures = {
        "nfs_init_context": (context, []),
        "nfs_destroy_context": (None, [context]),
        "nfs_get_error": (cstr, [context]),
        "nfs_parse_url_dir": (ctypes.POINTER(_URL), [context, cstr]),
        "nfs_destroy_url": (None, [ctypes.POINTER(_URL)]),
        "nfs_mount": (ctypes.c_int, [context, cstr, cstr]),
        "nfs_umount": (ctypes.c_int, [context]),
        "nfs_get_readmax": (u64, [context]),
        "nfs_get_writemax": (u64, [context]),
        "nfs_open": (ctypes.c_int, [context, cstr, ctypes.c_int, ctypes.POINTER(handle)]),
        "nfs_create": (ctypes.c_int, [context, cstr, ctypes.c_int, ctypes.c_int, ctypes.POINTER(handle)]),
        "nfs_pread": (ctypes.c_int, [context, handle, u64, u64, ctypes.c_void_p]),
        "nfs_pwrite": (ctypes.c_int, [context, handle, u64, u64, ctypes.c_void_p]),
        "nfs_fsync": (ctypes.c_int, [context, handle]),
        "nfs_close": (ctypes.c_int, [context, handle]),
        "nfs_fstat64": (ctypes.c_int, [context, handle, ctypes.POINTER(_Stat64)]),
        "nfs_unlink": (ctypes.c_int, [context, cstr]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(library, name)
        function.restype, function.argtypes = restype, argtypes
    return library


_lib = None


def library():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _address(buffer):
    """The address of a bytes-like object's memory, read-only ones included, without a copy."""
    view = np.frombuffer(buffer, dtype=np.uint8)
    return view.ctypes.data, view


class Export:
    """One connection (an nfs_context) to an exported directory, given as a libnfs URL:
    nfs://SERVER/EXPORT[?version=4&nfsport=PORT...]."""

    def __init__(self, url):
        self.url = url
        self._lib = library()
        self._context = self._lib.nfs_init_context()
        if not self._context:
            raise NFSError("nfs_init_context failed")
        try:
            parsed = self._lib.nfs_parse_url_dir(self._context, url.encode())
            if not parsed:
                raise NFSError(f"{url}: {self.error()}")
            try:
                server, path = parsed.contents.server, parsed.contents.path or b"/"
                self._check(self._lib.nfs_mount(self._context, server, path), f"mount {url}")
            finally:
                self._lib.nfs_destroy_url(parsed)
        except BaseException:
            self._lib.nfs_destroy_context(self._context)
            self._context = None
            raise
        # What libnfs negotiated (NFSv3's FSINFO), else DEFAULT_IO_SIZE.
        self.read_max = int(self._lib.nfs_get_readmax(self._context)) or DEFAULT_IO_SIZE
        self.write_max = int(self._lib.nfs_get_writemax(self._context)) or DEFAULT_IO_SIZE

    def error(self):
        message = self._lib.nfs_get_error(self._context)
        return message.decode(errors="replace") if message else "unknown error"

    def _check(self, status, what):
        if status < 0:
            raise NFSError(-status, f"{what}: {self.error()}")
        return status

    @staticmethod
    def _path(name):
        return ("/" + name.lstrip("/")).encode()

    def open(self, name, mode="rb", buffer_size=DEFAULT_BUFFER):
        """A buffered binary file on the export: mode "rb" or "wb" (created or truncated)."""
        if mode not in ("rb", "wb"):
            raise ValueError(f"mode {mode!r}: only 'rb' and 'wb' are supported")
        raw = NFSFile(self, name, writable=mode == "wb")
        return io.BufferedWriter(raw, buffer_size) if raw.writable() else io.BufferedReader(raw, buffer_size)

    def unlink(self, name):
        self._check(self._lib.nfs_unlink(self._context, self._path(name)), f"unlink {name}")

    def close(self):
        if self._context:
            self._lib.nfs_umount(self._context)
            self._lib.nfs_destroy_context(self._context)
            self._context = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NFSFile(io.RawIOBase):
    """A raw binary file on an Export: positioned READ/WRITE calls, COMMIT (fsync) at close."""

    def __init__(self, export, name, writable):
        super().__init__()
        self._export = export
        self.name = name
        self._writable = writable
        self._position = 0
        handle = ctypes.c_void_p()
        lib, context, path = export._lib, export._context, export._path(name)
        if writable:
            # libnfs's NFSv4 creates are exclusive, O_TRUNC or not: create, else truncate what is there.
            status = lib.nfs_create(context, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, ctypes.byref(handle))
            if status == -errno.EEXIST:
                status = lib.nfs_open(context, path, os.O_WRONLY | os.O_TRUNC, ctypes.byref(handle))
        else:
            status = lib.nfs_open(context, path, os.O_RDONLY, ctypes.byref(handle))
        export._check(status, f"open {name}")
        self._handle = handle

    def readable(self):
        return not self._writable

    def writable(self):
        return self._writable

    def seekable(self):
        return True

    def tell(self):
        return self._position

    def seek(self, offset, whence=io.SEEK_SET):
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size() + offset
        else:
            raise ValueError(f"whence {whence}")
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def size(self):
        stat = _Stat64()
        self._export._check(self._export._lib.nfs_fstat64(self._export._context, self._handle, ctypes.byref(stat)),
                            f"stat {self.name}")
        return int(stat.size)

    def readinto(self, buffer):
        """Fills the buffer with READs of at most rsize each; short only at the end of the file."""
        return self._transfer(buffer, self._export._lib.nfs_pread, self._export.read_max, "read")

    def write(self, buffer):
        """Writes all of the buffer with WRITEs of at most wsize each."""
        return self._transfer(buffer, self._export._lib.nfs_pwrite, self._export.write_max, "write")

    def _transfer(self, buffer, call, limit, what):
        """Moves the buffer with positioned calls of at most `limit` bytes each, from the file
        position on; stops early only when a read reaches the end of the file."""
        address, view = _address(buffer)
        total, wanted = 0, len(view)
        export = self._export
        while total < wanted:
            count = min(wanted - total, limit)
            done = export._check(call(export._context, self._handle, self._position, count, address + total),
                                 f"{what} {self.name}")
            if done == 0:
                if what == "read":
                    break
                raise NFSError(f"write {self.name}: the server accepted no bytes")
            total += done
            self._position += done
        return total

    def close(self):
        if self.closed:
            return
        try:
            if self._writable:
                self._export._check(self._export._lib.nfs_fsync(self._export._context, self._handle),
                                    f"commit {self.name}")
        finally:
            self._export._check(self._export._lib.nfs_close(self._export._context, self._handle), f"close {self.name}")
            super().close()
