// Private helpers shared by the shim's C++ files. Not part of the C API; never include from Swift.
#ifndef CGRPCSHIM_INTERNAL_H
#define CGRPCSHIM_INTERNAL_H

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cgrpc {

/// gRPC's canonical codes as plain ints (the C API speaks ints).
enum Code : int {
    kOK = 0,
    kCancelled = 1,
    kUnknown = 2,
    kInvalidArgument = 3,
    kDeadlineExceeded = 4,
    kNotFound = 5,
    kAlreadyExists = 6,
    kPermissionDenied = 7,
    kResourceExhausted = 8,
    kFailedPrecondition = 9,
    kAborted = 10,
    kOutOfRange = 11,
    kUnimplemented = 12,
    kInternal = 13,
    kUnavailable = 14,
    kDataLoss = 15,
    kUnauthenticated = 16,
};

/// Longest grace period or timeout honoured (about 50 years): keeps now + duration, in nanoseconds,
/// inside int64 for std::chrono::system_clock.
constexpr int64_t kMaxMilliseconds = int64_t(50) * 365 * 24 * 3600 * 1000;

/// A valid status code for grpc::Status: codes outside 1...16 become UNKNOWN.
grpc::StatusCode to_grpc_code(int code) noexcept;

/// A malloc-ed, NUL-terminated copy (NULL if allocation fails). Free with cgrpc_free/free.
char *dup_string(const std::string &text) noexcept;

/// Stores a malloc-ed copy of `text` in `*out` when `out` is not NULL.
void set_error(char **out, const std::string &text) noexcept;

/// Human-readable errno text.
std::string errno_text(int error);

/// A listening/connecting address in one of the accepted forms.
struct Address {
    bool is_unix = false;
    std::string path;         // unix: absolute socket path
    std::string host_port;    // tcp: "host:port" (IPv6 in brackets)
    std::string grpc_target;  // what to hand to gRPC
};

/// Parses "unix:///abs", "unix:/abs", "tcp://host:port" or "host:port". Returns false with `error` set.
bool parse_address(const char *text, Address &out, std::string &error);

/// Contiguous view of a ByteBuffer: points into the single slice when there is one, otherwise
/// into `storage`, which receives a flattened copy.
struct FlatBytes {
    std::vector<grpc::Slice> slices;
    std::vector<uint8_t> storage;
    const uint8_t *data = nullptr;
    size_t size = 0;

    /// Returns false when the buffer could not be read.
    bool load(const grpc::ByteBuffer &buffer);
};

/// A one-slice ByteBuffer holding a copy of `data` (an empty slice when `size` is 0).
grpc::ByteBuffer make_buffer(const uint8_t *data, size_t size);

}  // namespace cgrpc

#endif  // CGRPCSHIM_INTERNAL_H
