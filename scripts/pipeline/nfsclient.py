"""A user-space NFS client for the pipeline's steps: libnfs (Debian's libnfs13) through ctypes.

The machines this benchmark runs on have no kernel NFS client, so a step cannot `mount -t nfs`.
Instead each step connects to the export itself:

    export = Export("nfs://127.0.0.1/pipeline?version=4&nfsport=20490")
    with export.open("x_train.pkl", "wb") as handle:
        frame.to_pickle(handle)
    with export.open("x_train.pkl", "rb") as handle:
        frame = pd.read_pickle(handle)

`open` returns an io.BufferedWriter / io.BufferedReader over `NFSFile`, a raw file that moves each
buffer with libnfs's asynchronous pread/pwrite in calls of at most the server's rsize/wsize, up
to IN_FLIGHT of them outstanding at a time, as the kernel client reads ahead and writes behind.
Closing a written file commits it (nfs_fsync, an NFS COMMIT) before closing, which is what the
kernel client's close-to-open consistency does at close().
"""

import ctypes
import ctypes.util
import errno
import io
import os
import select

import numpy as np

DEFAULT_BUFFER = 8 << 20
# The largest READ/WRITE a call sends when libnfs does not know the server's (its NFSv4 code
# leaves rsize/wsize at 0): 1 MiB, the Linux kernel client's largest rsize/wsize and the
# MaxRSize/MaxWSize the pipeline's ganesha is configured with.
DEFAULT_IO_SIZE = 1 << 20
# READs or WRITEs outstanding at once on a file's buffer (the kernel client reads ahead up to 15
# rsize-sized READs, and writes back with as many as its RPC slot table holds).
IN_FLIGHT = 16
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
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
        "nfs_set_autoreconnect": (None, [context, ctypes.c_int]),
        "nfs_umount": (ctypes.c_int, [context]),
        "nfs_get_readmax": (u64, [context]),
        "nfs_get_writemax": (u64, [context]),
        "nfs_open": (ctypes.c_int, [context, cstr, ctypes.c_int, ctypes.POINTER(handle)]),
        "nfs_create": (ctypes.c_int, [context, cstr, ctypes.c_int, ctypes.c_int, ctypes.POINTER(handle)]),
        "nfs_pread_async": (ctypes.c_int, [context, handle, u64, u64, _CALLBACK, ctypes.c_void_p]),
        "nfs_pwrite_async": (ctypes.c_int, [context, handle, u64, u64, ctypes.c_void_p, _CALLBACK, ctypes.c_void_p]),
        "nfs_get_fd": (ctypes.c_int, [context]),
        "nfs_which_events": (ctypes.c_int, [context]),
        "nfs_service": (ctypes.c_int, [context, ctypes.c_int]),
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
        self._orphans = []  # callbacks (and buffers) of calls a failed transfer left outstanding
        self._context = self._lib.nfs_init_context()
        if not self._context:
            raise NFSError("nfs_init_context failed")
        # A server that goes away fails the call (a step then fails loudly) rather than being
        # waited for forever; an `autoreconnect=` in the URL overrides this.
        self._lib.nfs_set_autoreconnect(self._context, 0)
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
        return message.decode(errors="replace") if message else "failed (libnfs gave no reason; is the server gone?)"

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
        """Fills the buffer with READs of at most rsize each; short only at the end of the file
        (or where the server answered a READ short)."""
        return self._transfer(buffer, reading=True)

    def write(self, buffer):
        """Writes the buffer with WRITEs of at most wsize each (UNSTABLE: committed at close)."""
        return self._transfer(buffer, reading=False)

    def _transfer(self, buffer, reading):
        """Moves the buffer from the file position on with up to IN_FLIGHT positioned calls
        outstanding; returns how many bytes from its start were moved without a gap."""
        address, view = _address(buffer)
        wanted = len(view)
        export, lib, context = self._export, self._export._lib, self._export._context
        limit = export.read_max if reading else export.write_max
        what = f"{'read' if reading else 'write'} {self.name}"
        requested, done, failure = {}, {}, []  # start of each call in the buffer -> bytes asked / moved

        def on_reply(status, _context, data, private):
            start = private or 0
            if status < 0:
                message = ctypes.string_at(data).decode(errors="replace") if data else os.strerror(-status)
                failure.append((-status, message))
                status = 0
            elif reading and status:
                ctypes.memmove(address + start, data, status)
            done[start] = status

        callback = _CALLBACK(on_reply)
        poller = select.poll()
        issued = 0
        try:
            while True:
                # Stop asking after a failure or a short answer (end of file); wait for the rest.
                stop = failure or any(done[start] < requested[start] for start in done)
                while not stop and issued < wanted and len(requested) - len(done) < IN_FLIGHT:
                    count = min(wanted - issued, limit)
                    if reading:
                        status = lib.nfs_pread_async(context, self._handle, self._position + issued, count,
                                                     callback, issued)
                    else:
                        status = lib.nfs_pwrite_async(context, self._handle, self._position + issued, count,
                                                      address + issued, callback, issued)
                    export._check(status, what)
                    requested[issued] = count
                    issued += count
                if len(done) == len(requested):
                    break
                self._service(poller, what)
        except BaseException:
            # Calls may still be outstanding; libnfs runs their callbacks later (at the latest when
            # the context is destroyed), so the callback and the buffer must outlive this call.
            export._orphans.append((callback, view))
            raise
        if failure:
            raise NFSError(failure[0][0], f"{what}: {failure[0][1]}")
        total = 0
        for start in sorted(requested):
            total += done[start]
            if done[start] < requested[start]:
                break
        if total == 0 and wanted and not reading:
            raise NFSError(f"{what}: the server accepted no bytes")
        self._position += total
        return total

    def _service(self, poller, what):
        """Waits for the connection and lets libnfs process what arrived (replies run callbacks)."""
        export = self._export
        fd = export._lib.nfs_get_fd(export._context)
        poller.register(fd, export._lib.nfs_which_events(export._context))
        try:
            events = poller.poll(60_000)
        finally:
            poller.unregister(fd)
        if not events:
            raise NFSError(f"{what}: no reply from the server in 60 s")
        export._check(export._lib.nfs_service(export._context, events[0][1]), what)

    def close(self):
        if self.closed:
            return
        if self._export._context is None:  # the connection is gone, and the handle with it
            super().close()
            return
        try:
            if self._writable:
                self._export._check(self._export._lib.nfs_fsync(self._export._context, self._handle),
                                    f"commit {self.name}")
        finally:
            self._export._check(self._export._lib.nfs_close(self._export._context, self._handle), f"close {self.name}")
            super().close()
