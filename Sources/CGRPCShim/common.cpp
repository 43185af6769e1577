// Shared helpers: memory, clocks, status codes, address parsing and byte buffers.
#include "CGRPCShim.h"
#include "shim_internal.h"

#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace cgrpc {

grpc::StatusCode to_grpc_code(int code) noexcept {
    if (code < kCancelled || code > kUnauthenticated) return grpc::StatusCode::UNKNOWN;
    return static_cast<grpc::StatusCode>(code);
}

char *dup_string(const std::string &text) noexcept {
    char *copy = static_cast<char *>(std::malloc(text.size() + 1));
    if (copy == nullptr) return nullptr;
    std::memcpy(copy, text.data(), text.size());
    copy[text.size()] = '\0';
    return copy;
}

void set_error(char **out, const std::string &text) noexcept {
    if (out != nullptr) *out = dup_string(text);
}

std::string errno_text(int error) {
    char buffer[256];
    // GNU strerror_r returns a pointer that may or may not be `buffer`.
    const char *text = strerror_r(error, buffer, sizeof buffer);
    return std::string(text != nullptr ? text : "unknown error");
}

namespace {

bool has_prefix(const std::string &text, const char *prefix) {
    return text.compare(0, std::strlen(prefix), prefix) == 0;
}

bool parse_port(const std::string &text, std::string &error) {
    if (text.empty() || text.size() > 5) {
        error = "port \"" + text + "\" is not a number between 0 and 65535";
        return false;
    }
    long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            error = "port \"" + text + "\" is not a number between 0 and 65535";
            return false;
        }
        value = value * 10 + (c - '0');
    }
    if (value > 65535) {
        error = "port \"" + text + "\" is not a number between 0 and 65535";
        return false;
    }
    return true;
}

}  // namespace

bool parse_address(const char *text, Address &out, std::string &error) {
    if (text == nullptr || *text == '\0') {
        error = "empty address";
        return false;
    }
    const std::string address(text);
    if (has_prefix(address, "unix:")) {
        std::string path = has_prefix(address, "unix://") ? address.substr(7) : address.substr(5);
        if (path.empty() || path[0] != '/') {
            error = "unix socket path in \"" + address + "\" must be absolute (use unix:///path/to/socket)";
            return false;
        }
        if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
            error = "unix socket path \"" + path + "\" is longer than " +
                    std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes";
            return false;
        }
        out.is_unix = true;
        out.path = path;
        out.host_port.clear();
        out.grpc_target = "unix:" + path;
        return true;
    }

    std::string host_port = has_prefix(address, "tcp://") ? address.substr(6) : address;
    if (host_port.find("://") != std::string::npos) {
        error = "unsupported scheme in \"" + address + "\" (expected unix:// or tcp://)";
        return false;
    }
    std::string host, port;
    if (!host_port.empty() && host_port[0] == '[') {
        const size_t close = host_port.find(']');
        if (close == std::string::npos || close + 1 >= host_port.size() || host_port[close + 1] != ':') {
            error = "malformed IPv6 address \"" + host_port + "\" (expected [host]:port)";
            return false;
        }
        host = host_port.substr(0, close + 1);
        port = host_port.substr(close + 2);
        if (host.size() <= 2) {
            error = "empty IPv6 host in \"" + host_port + "\"";
            return false;
        }
    } else {
        const size_t colon = host_port.rfind(':');
        if (colon == std::string::npos) {
            error = "address \"" + address + "\" has no port (expected host:port or unix:///path)";
            return false;
        }
        host = host_port.substr(0, colon);
        port = host_port.substr(colon + 1);
        if (host.find(':') != std::string::npos) {
            error = "IPv6 host in \"" + address + "\" must be written in brackets, e.g. [::1]:10000";
            return false;
        }
        if (host.find_first_of("/ \t") != std::string::npos) {
            error = "invalid host \"" + host + "\"";
            return false;
        }
        if (host.empty()) host = "0.0.0.0";
    }
    if (!parse_port(port, error)) return false;
    out.is_unix = false;
    out.path.clear();
    out.host_port = host + ":" + port;
    out.grpc_target = out.host_port;
    return true;
}

bool FlatBytes::load(const grpc::ByteBuffer &buffer) {
    slices.clear();
    storage.clear();
    data = nullptr;
    size = 0;
    if (!buffer.Valid()) return true;  // no bytes
    if (!buffer.Dump(&slices).ok()) return false;
    if (slices.size() == 1) {
        data = slices[0].begin();
        size = slices[0].size();
        return true;
    }
    size_t total = 0;
    for (const auto &slice : slices) total += slice.size();
    storage.resize(total);
    size_t offset = 0;
    for (const auto &slice : slices) {
        if (slice.size() > 0) std::memcpy(storage.data() + offset, slice.begin(), slice.size());
        offset += slice.size();
    }
    slices.clear();
    data = storage.data();
    size = total;
    return true;
}

grpc::ByteBuffer make_buffer(const uint8_t *data, size_t size) {
    grpc::Slice slice = size > 0 ? grpc::Slice(data, size) : grpc::Slice();
    return grpc::ByteBuffer(&slice, 1);
}

}  // namespace cgrpc

extern "C" void cgrpc_free(void *pointer) { std::free(pointer); }

extern "C" int64_t cgrpc_realtime_now_nanos(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}
