#define FUSE_USE_VERSION 312
//
// vineyard-csi: CFUSE shim over libfuse3's low-level API.
//
// FUSE_USE_VERSION must be the first line: fuse_common.h checks it, and a define set anywhere
// else (cSettings, a later line) does not reach the Swift importer. It is 3.12 because below
// that `fuse_session_loop_mt` binds to the 3.2 entry point, which reads the opaque 3.12
// `fuse_loop_config` as the old public struct: the idle-thread limit then comes out as 1 and
// libfuse starts and ends a worker thread for nearly every request.
//
// Everything Swift cannot import or cannot use safely goes through a `cfuse_` prefixed static
// inline function below: function-like macros and versioned symbols (fuse_session_new,
// fuse_session_loop_mt), FUSE_ARGS_INIT / FUSE_BUFVEC_INIT, the variadic fuse_log, and the C
// bitfields of struct fuse_file_info.

#ifndef CFUSE_SHIM_H
#define CFUSE_SHIM_H

#include <fuse_lowlevel.h>
#include <fuse_opt.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__cplusplus)
extern "C" {
#endif

// MARK: - Passthrough

/// memfd_create(2), which glibc declares only under _GNU_SOURCE: an anonymous regular file to
/// probe whether backing files can be registered.
static inline int cfuse_memfd_create(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}

// MARK: - Arguments

/// FUSE_ARGS_INIT(0, NULL): an empty, owned argument vector to fill with fuse_opt_add_arg.
static inline struct fuse_args cfuse_args_empty(void) {
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    return args;
}

static inline int cfuse_args_add(struct fuse_args *args, const char *arg) {
    return fuse_opt_add_arg(args, arg);
}

static inline void cfuse_args_free(struct fuse_args *args) {
    fuse_opt_free_args(args);
}

// MARK: - Session

/// fuse_session_new, resolved by the C compiler (it is a versioned symbol / macro on some
/// builds), with the C sizeof of the operations table.
static inline struct fuse_session *cfuse_session_new(struct fuse_args *args,
                                                     const struct fuse_lowlevel_ops *ops,
                                                     void *userdata) {
    return fuse_session_new(args, ops, sizeof(*ops), userdata);
}

/// Multi-threaded loop with a fuse_loop_config built here (fuse_session_loop_mt is a macro
/// over fuse_session_loop_mt_312 when libfuse lacks versioned symbols).
///
/// `max_threads` <= 0 and `max_idle_threads` < 0 keep libfuse's defaults.
static inline int cfuse_session_loop_mt(struct fuse_session *se, int clone_fd, int max_threads,
                                        int max_idle_threads) {
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (config == NULL) {
        return -ENOMEM;
    }
    fuse_loop_cfg_set_clone_fd(config, clone_fd ? 1 : 0);
    if (max_threads > 0) {
        fuse_loop_cfg_set_max_threads(config, (unsigned int)max_threads);
    }
    if (max_idle_threads >= 0) {
        fuse_loop_cfg_set_idle_threads(config, (unsigned int)max_idle_threads);
    }
    int result = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    return result;
}

// MARK: - Logging

/// fuse_log is variadic; log one preformatted message.
static inline void cfuse_log(enum fuse_log_level level, const char *message) {
    fuse_log(level, "%s", message);
}

// MARK: - struct fuse_file_info bitfields

/// Sets the reply flags of an open/create/opendir reply (C bitfields Swift should not poke).
/// `parallel_direct_writes` exists from libfuse 3.15 on; on older headers the flag is ignored.
static inline void cfuse_file_info_set_open_flags(struct fuse_file_info *fi, uint64_t fh,
                                                  int direct_io, int keep_cache,
                                                  int nonseekable, int cache_readdir,
                                                  int noflush, int parallel_direct_writes) {
    fi->fh = fh;
    fi->direct_io = direct_io ? 1 : 0;
    fi->keep_cache = keep_cache ? 1 : 0;
    fi->nonseekable = nonseekable ? 1 : 0;
    fi->cache_readdir = cache_readdir ? 1 : 0;
    fi->noflush = noflush ? 1 : 0;
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 15)
    fi->parallel_direct_writes = parallel_direct_writes ? 1 : 0;
#else
    (void)parallel_direct_writes;
#endif
}

/// Whether this libfuse can carry the parallel_direct_writes open flag.
static inline int cfuse_supports_parallel_direct_writes(void) {
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 15)
    return 1;
#else
    return 0;
#endif
}

// MARK: - Replies

/// Replies to a read with `size` bytes of `fd` starting at `pos`, through a one-element
/// fuse_bufvec flagged FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK (FUSE_BUFVEC_INIT is a macro).
/// libfuse splices from the descriptor into /dev/fuse when FUSE_CAP_SPLICE_WRITE is on and
/// falls back to pread otherwise.
static inline int cfuse_reply_fd(fuse_req_t req, int fd, off_t pos, size_t size, int splice_move) {
    struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(size);
    bufv.buf[0].flags = (enum fuse_buf_flags)(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY);
    bufv.buf[0].fd = fd;
    bufv.buf[0].pos = pos;
    return fuse_reply_data(req, &bufv,
                           splice_move ? FUSE_BUF_SPLICE_MOVE : (enum fuse_buf_copy_flags)0);
}

#if defined(__cplusplus)
}
#endif

#endif  // CFUSE_SHIM_H
