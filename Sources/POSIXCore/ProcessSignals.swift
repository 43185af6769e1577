//
// vineyard-csi: POSIXCore
//
// ProcessSignals.swift: the signal policy of every executable of the package.

import Glibc

/// What the package's processes do about signals that are not requests to stop.
public enum ProcessSignals {
    /// Ignores `SIGPIPE`, so a write to a pipe or socket whose reader is gone fails with
    /// ``Errno/brokenPipe`` instead of killing the process. Each executable calls this first.
    ///
    /// The driver serves mounts: if it died because its log pipe closed (`| head`, a `| tee`
    /// that Ctrl-C stopped first, a log collector that restarted) or because a client hung up
    /// on one of its sockets, every mount it serves would go stale. Logging writes ignore
    /// their result, so a closed log stream costs one failed `write` per line.
    public static func applyPolicy() {
        signal(SIGPIPE, SIG_IGN)
    }
}
