/*
 * CGRPCShim: a byte-level unary gRPC server and client over libgrpc++, behind a plain C API.
 *
 * The shim knows nothing about any protocol buffer schema: requests and responses are opaque bytes
 * and methods are full gRPC paths such as "/pkg.Service/Method".
 *
 * Conventions
 * - Every symbol is prefixed `cgrpc_`; every handle is opaque.
 * - Functions that can fail return a gRPC status code (0 = OK) and, on failure, store a message
 *   allocated by the shim in `*out_error`; free it with cgrpc_free(). No C++ exception ever leaves
 *   the shim.
 * - Status codes are gRPC's canonical codes (0 OK, 1 CANCELLED, ... 16 UNAUTHENTICATED).
 * - Addresses: "unix:///abs/path", "unix:/abs/path", "tcp://host:port" or "host:port".
 *   IPv6 hosts are written in brackets: "[::1]:10000".
 *
 * Threads: callbacks run on gRPC's own threads. They must return quickly and must not block on
 * other work; answer later, from any thread, with cgrpc_call_respond().
 */
#ifndef CGRPCSHIM_H
#define CGRPCSHIM_H

#include <stddef.h>
#include <stdint.h>

#if defined(__cplusplus)
extern "C" {
#endif

/** Largest request or response message, in bytes, that servers and channels accept (64 MiB). */
#define CGRPC_MAX_MESSAGE_BYTES (64 * 1024 * 1024)

/** A running (or stopped) server. */
typedef struct cgrpc_server cgrpc_server;
/** One incoming unary call waiting for its answer. */
typedef struct cgrpc_call cgrpc_call;
/** A client channel to one address; safe to use from several threads at once. */
typedef struct cgrpc_channel cgrpc_channel;
/** One outgoing asynchronous unary call. */
typedef struct cgrpc_client_call cgrpc_client_call;

/**
 * Frees memory the shim handed out (error messages, response bytes). NULL is ignored.
 */
void cgrpc_free(void *pointer);

/** The current wall-clock time (CLOCK_REALTIME) in nanoseconds since the Unix epoch. */
int64_t cgrpc_realtime_now_nanos(void);

/* MARK: - Server */

/**
 * Called once per incoming unary call, on a gRPC thread.
 *
 * `method`, `request` and `request_len` are valid only until the callback returns; copy them.
 * `deadline_unix_nanos` is the client's deadline (CLOCK_REALTIME, ns since the epoch), or 0 when
 * the call has none. The callee must answer exactly once with cgrpc_call_respond(), from any
 * thread, at any later time (or from within the callback).
 */
typedef void (*cgrpc_unary_handler_fn)(void *context, cgrpc_call *call, const char *method,
                                       const uint8_t *request, size_t request_len,
                                       int64_t deadline_unix_nanos);

/**
 * Starts a server listening on `address` that hands every call, whatever its method, to `handler`.
 *
 * For a unix address, an existing socket file at the path is removed first unless a server is
 * still accepting connections on it; any other kind of file there is refused. Once listening, the
 * socket file is chmod-ed to `socket_mode` (for example 0600 or 0660). `socket_mode` is ignored for
 * TCP addresses.
 *
 * @return 0 and the server in `*out_server`, or a status code (INVALID_ARGUMENT, ALREADY_EXISTS,
 *         FAILED_PRECONDITION, PERMISSION_DENIED, NOT_FOUND, UNAVAILABLE, INTERNAL) and a message in
 *         `*out_error` (free with cgrpc_free). `handler` is never called after
 *         cgrpc_server_shutdown() returns.
 */
int cgrpc_server_create(const char *address, uint32_t socket_mode, cgrpc_unary_handler_fn handler,
                        void *context, cgrpc_server **out_server, char **out_error);

/** The TCP port the server listens on (useful after asking for port 0); 0 for unix sockets. */
int cgrpc_server_port(const cgrpc_server *server);

/**
 * Stops the server: new calls are refused at once, calls in flight may finish within `grace_ms`
 * milliseconds, then every call still unanswered is answered UNAVAILABLE (or CANCELLED) by the
 * shim. Removes the unix socket file. Blocks until all of that is done. Idempotent: later or
 * concurrent calls wait for the first one to complete.
 */
void cgrpc_server_shutdown(cgrpc_server *server, int64_t grace_ms);

/** Blocks until the server has been shut down completely. */
void cgrpc_server_wait(cgrpc_server *server);

/** Shuts the server down with no grace if still running, then frees it. */
void cgrpc_server_destroy(cgrpc_server *server);

/**
 * Answers a call; must be called exactly once per call, from any thread. After it returns the call
 * handle is invalid.
 *
 * `status_code` 0 sends `response` (`response_len` bytes, may be NULL when 0) with status OK.
 * Any other code sends that status with `message` (may be NULL) and no response. Answering a call
 * that was already cancelled, or already answered by the shim at shutdown, only frees it.
 */
void cgrpc_call_respond(cgrpc_call *call, int status_code, const char *message, const uint8_t *response,
                        size_t response_len);

/** 1 when the client cancelled the call (or its deadline passed, or the server is stopping), else 0. */
int cgrpc_call_is_cancelled(const cgrpc_call *call);

/* MARK: - Client */

/**
 * Creates a channel to `target` (same address forms as servers). Connecting is lazy: a missing
 * server shows up as UNAVAILABLE on the first call, not here.
 *
 * @return 0 and the channel in `*out_channel`, or INVALID_ARGUMENT/INTERNAL and `*out_error`.
 */
int cgrpc_channel_create(const char *target, cgrpc_channel **out_channel, char **out_error);

/** Frees a channel. Calls still in flight on it complete normally. */
void cgrpc_channel_destroy(cgrpc_channel *channel);

/**
 * Makes a blocking unary call. `timeout_ms` <= 0 means no deadline. Safe to call concurrently on
 * one channel.
 *
 * On return `*out_status_code` holds the status. With OK, `*out_response`/`*out_response_len` hold
 * the response (free `*out_response` with cgrpc_free; it may be NULL when the length is 0);
 * otherwise `*out_message` holds the status message (free with cgrpc_free; may be NULL).
 * @return the same status code.
 */
int cgrpc_channel_call(cgrpc_channel *channel, const char *method, const uint8_t *request, size_t request_len,
                       int64_t timeout_ms, uint8_t **out_response, size_t *out_response_len, int *out_status_code,
                       char **out_message);

/**
 * Called exactly once when an asynchronous call completes, on a gRPC thread (or on the thread that
 * started the call if it fails at once). `message` and `response` are valid only during the callback.
 */
typedef void (*cgrpc_completion_fn)(void *context, int status_code, const char *message, const uint8_t *response,
                                    size_t response_len);

/**
 * Starts a unary call without blocking. `completion` runs exactly once, possibly before this
 * function returns. Returns a handle that lets the caller cancel the call; release it with
 * cgrpc_client_call_release() exactly once (before or after completion). Returns NULL only when the
 * call could not even be started, in which case `completion` has already run with the error.
 */
cgrpc_client_call *cgrpc_channel_call_async(cgrpc_channel *channel, const char *method, const uint8_t *request,
                                            size_t request_len, int64_t timeout_ms, cgrpc_completion_fn completion,
                                            void *context);

/** Asks gRPC to cancel the call; completion then reports CANCELLED unless it already finished. */
void cgrpc_client_call_cancel(cgrpc_client_call *call);

/** Drops the caller's reference to the call handle. */
void cgrpc_client_call_release(cgrpc_client_call *call);

#if defined(__cplusplus)
} /* extern "C" */
#endif

#endif /* CGRPCSHIM_H */
