// The generic unary server: every call, whatever its method, goes to one C callback and is answered
// later, from any thread, with cgrpc_call_respond().
//
// Lifetime of a call (cgrpc_call is the gRPC reactor itself):
//   - gRPC owns it until OnDone; the C side owns a reference from dispatch until cgrpc_call_respond.
//   - It is deleted by whichever of OnDone / cgrpc_call_respond comes last.
//   - `finished_` makes Finish happen exactly once: from respond, from OnCancel, from a failed read,
//     or from the shutdown sweep. OnDone can only follow Finish, so a call that has been claimed
//     for finishing stays alive until its Finish is issued.
// Lock order: ServerCore::mu_ before cgrpc_call::mu_. No lock is held while calling into gRPC or C.
#include "CGRPCShim.h"
#include "shim_internal.h"

#include <grpc/grpc.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace cgrpc {

class ServerCore;

}  // namespace cgrpc

// MARK: - Call

struct cgrpc_call final : public grpc::ServerGenericBidiReactor {
    cgrpc_call(std::shared_ptr<cgrpc::ServerCore> core, grpc::GenericCallbackServerContext *context);

    void OnReadDone(bool ok) override;
    void OnWriteDone(bool) override {}
    void OnCancel() override;
    void OnDone() override;

    /// The C side's single answer.
    void respond(int code, const char *message, const uint8_t *data, size_t size) noexcept;

    /// Marks the call finished if nobody has yet; the winner must then call send_status.
    bool claim_finish() noexcept;
    /// Sends a non-OK status (after a successful claim_finish).
    void send_status(int code, const char *message) noexcept;

    /// Claims and sends in one go; does nothing when the call was already finished.
    void finish_if_needed(int code, const char *message) noexcept {
        if (claim_finish()) send_status(code, message);
    }

    bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

  private:
    std::shared_ptr<cgrpc::ServerCore> core_;
    grpc::GenericCallbackServerContext *context_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
    std::atomic<bool> cancelled_{false};

    std::mutex mu_;
    bool finished_ = false;       // Finish (or StartWriteAndFinish) has been or is being issued
    bool done_ = false;           // OnDone ran
    bool held_by_caller_ = false; // dispatched to C and not yet answered
};

namespace cgrpc {

/// State shared by the server and its calls; outlives the server while calls are unanswered.
class ServerCore {
  public:
    ServerCore(cgrpc_unary_handler_fn handler, void *context) : handler_(handler), context_(context) {}

    void dispatch(cgrpc_call *call, const char *method, const uint8_t *data, size_t size, int64_t deadline) {
        handler_(context_, call, method, data, size, deadline);
    }

    void add(cgrpc_call *call) {
        std::lock_guard<std::mutex> lock(mu_);
        live_.insert(call);
    }

    void remove(cgrpc_call *call) {
        std::lock_guard<std::mutex> lock(mu_);
        live_.erase(call);
        if (live_.empty()) idle_.notify_all();
    }

    /// Waits until no call is live or `deadline` passes; returns whether the server went idle.
    bool wait_idle_until(std::chrono::system_clock::time_point deadline) {
        std::unique_lock<std::mutex> lock(mu_);
        return idle_.wait_until(lock, deadline, [this] { return live_.empty(); });
    }

    void wait_idle() {
        std::unique_lock<std::mutex> lock(mu_);
        idle_.wait(lock, [this] { return live_.empty(); });
    }

    /// Answers every live, unanswered call with `code`.
    void finish_all(int code, const char *message) {
        std::vector<cgrpc_call *> claimed;
        {
            std::lock_guard<std::mutex> lock(mu_);
            claimed.reserve(live_.size());
            for (cgrpc_call *call : live_) {
                if (call->claim_finish()) claimed.push_back(call);
            }
        }
        // Claimed calls cannot reach OnDone before their Finish below, so they are still alive.
        for (cgrpc_call *call : claimed) call->send_status(code, message);
    }

  private:
    cgrpc_unary_handler_fn handler_;
    void *context_;
    std::mutex mu_;
    std::condition_variable idle_;
    std::unordered_set<cgrpc_call *> live_;
};

/// Answers a call it could not even set up.
class FailingReactor final : public grpc::ServerGenericBidiReactor {
  public:
    explicit FailingReactor(grpc::Status status) { Finish(std::move(status)); }
    void OnDone() override { delete this; }
};

class GenericService final : public grpc::CallbackGenericService {
  public:
    explicit GenericService(std::shared_ptr<ServerCore> core) : core_(std::move(core)) {}

    grpc::ServerGenericBidiReactor *CreateReactor(grpc::GenericCallbackServerContext *context) override {
        try {
            return new cgrpc_call(core_, context);
        } catch (...) {
            return new FailingReactor(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "cannot allocate call"));
        }
    }

  private:
    std::shared_ptr<ServerCore> core_;
};

}  // namespace cgrpc

cgrpc_call::cgrpc_call(std::shared_ptr<cgrpc::ServerCore> core, grpc::GenericCallbackServerContext *context)
    : core_(std::move(core)), context_(context) {
    core_->add(this);
    StartRead(&request_);
}

void cgrpc_call::OnReadDone(bool ok) {
    if (!ok) {
        finish_if_needed(cgrpc::kInternal, "the client sent no request message");
        return;
    }
    try {
        const std::string method = context_->method();
        int64_t deadline = 0;
        const auto point = context_->deadline();
        if (point != std::chrono::system_clock::time_point::max()) {
            deadline = std::chrono::duration_cast<std::chrono::nanoseconds>(point.time_since_epoch()).count();
            if (deadline <= 0) deadline = 1;  // already expired, but still "has a deadline"
        }
        cgrpc::FlatBytes bytes;
        if (!bytes.load(request_)) {
            finish_if_needed(cgrpc::kInternal, "cannot read the request message");
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (finished_) return;  // cancelled or shut down while reading
            held_by_caller_ = true;
        }
        core_->dispatch(this, method.c_str(), bytes.data, bytes.size, deadline);
    } catch (...) {
        finish_if_needed(cgrpc::kInternal, "cannot dispatch the call");
    }
}

void cgrpc_call::OnCancel() {
    cancelled_.store(true, std::memory_order_release);
    finish_if_needed(cgrpc::kCancelled, "call cancelled");
}

void cgrpc_call::OnDone() {
    core_->remove(this);
    bool destroy;
    {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = true;
        destroy = !held_by_caller_;
    }
    if (destroy) delete this;
}

bool cgrpc_call::claim_finish() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return false;
    finished_ = true;
    return true;
}

void cgrpc_call::send_status(int code, const char *message) noexcept {
    try {
        Finish(grpc::Status(cgrpc::to_grpc_code(code), message != nullptr ? message : ""));
    } catch (...) {
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, ""));
    }
}

void cgrpc_call::respond(int code, const char *message, const uint8_t *data, size_t size) noexcept {
    bool send = false;
    bool destroy = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        held_by_caller_ = false;
        if (!finished_) {
            finished_ = true;
            send = true;
        } else {
            destroy = done_;
        }
    }
    if (destroy) {
        delete this;
        return;
    }
    if (!send) return;  // OnDone (still to come) deletes the call
    if (code != cgrpc::kOK) {
        send_status(code, message);
        return;
    }
    try {
        response_ = cgrpc::make_buffer(data, size);
    } catch (...) {
        send_status(cgrpc::kResourceExhausted, "cannot allocate the response message");
        return;
    }
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
}

// MARK: - Server

struct cgrpc_server {
    enum class State { running, stopping, stopped };

    std::shared_ptr<cgrpc::ServerCore> core;
    std::unique_ptr<cgrpc::GenericService> service;
    std::unique_ptr<grpc::Server> server;
    cgrpc::Address address;
    int port = 0;
    bool have_socket_identity = false;
    dev_t socket_device = 0;
    ino_t socket_inode = 0;

    std::mutex mu;
    std::condition_variable stopped;
    State state = State::running;
};

namespace {

int code_for_errno(int error) {
    switch (error) {
    case EACCES:
    case EPERM:
    case EROFS:
        return cgrpc::kPermissionDenied;
    case ENOENT:
    case ENOTDIR:
        return cgrpc::kNotFound;
    case EADDRINUSE:
    case EEXIST:
        return cgrpc::kAlreadyExists;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
    case ENAMETOOLONG:
        return cgrpc::kInvalidArgument;
    default:
        return cgrpc::kInternal;
    }
}

/// Removes a stale socket file at `path`; refuses anything else that is there.
int prepare_unix_path(const std::string &path, std::string &error) {
    struct stat info;
    if (lstat(path.c_str(), &info) != 0) {
        const int e = errno;
        if (e == ENOENT) return cgrpc::kOK;
        error = "cannot inspect socket path " + path + ": " + cgrpc::errno_text(e);
        return code_for_errno(e);
    }
    if (!S_ISSOCK(info.st_mode)) {
        error = "socket path " + path + " exists and is not a socket; refusing to replace it";
        return cgrpc::kAlreadyExists;
    }
    // A socket someone still accepts on is not stale.
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        const int rc = connect(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
        const int e = errno;
        close(fd);
        if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
            error = "another server is already listening on " + path;
            return cgrpc::kAlreadyExists;
        }
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        const int e = errno;
        error = "cannot remove stale socket " + path + ": " + cgrpc::errno_text(e);
        return code_for_errno(e);
    }
    return cgrpc::kOK;
}

/// Binds once ourselves (and lets go) to learn whether, and why not, gRPC could listen: gRPC only
/// logs the reason. Used before starting, so common mistakes fail with a clear message and without
/// gRPC's log noise, and again after a failed start. Returns kOK when the bind worked (and sets no
/// error); for TCP port 0 only the host is resolved.
int probe_listen(const cgrpc::Address &address, std::string &error) {
    const std::string what = address.is_unix ? "unix:" + address.path : address.host_port;
    int bind_errno = 0;
    if (address.is_unix) {
        const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::memcpy(addr.sun_path, address.path.c_str(), address.path.size() + 1);
            if (bind(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
                bind_errno = errno;
            } else {
                unlink(address.path.c_str());
            }
            close(fd);
        }
    } else {
        std::string host = address.host_port.substr(0, address.host_port.rfind(':'));
        const std::string port = address.host_port.substr(address.host_port.rfind(':') + 1);
        if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        addrinfo *results = nullptr;
        const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &results);
        if (rc != 0) {
            error = "cannot listen on " + what + ": cannot resolve host: " + gai_strerror(rc);
            return cgrpc::kInvalidArgument;
        }
        // Port 0 is resolved but not bound: any free port will do.
        for (addrinfo *ai = port == "0" ? nullptr : results; ai != nullptr && bind_errno == 0; ai = ai->ai_next) {
            const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) continue;
            const int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) bind_errno = errno;
            close(fd);
        }
        freeaddrinfo(results);
    }
    if (bind_errno != 0) {
        error = "cannot listen on " + what + ": " + cgrpc::errno_text(bind_errno);
        return code_for_errno(bind_errno);
    }
    return cgrpc::kOK;
}

void remove_socket_file(cgrpc_server *server) {
    if (!server->address.is_unix) return;
    struct stat info;
    if (lstat(server->address.path.c_str(), &info) != 0 || !S_ISSOCK(info.st_mode)) return;
    if (server->have_socket_identity &&
        (info.st_dev != server->socket_device || info.st_ino != server->socket_inode)) {
        return;  // someone else's socket now
    }
    unlink(server->address.path.c_str());
}

void stop_server(cgrpc_server *server, int64_t grace_ms) {
    if (grace_ms < 0) grace_ms = 0;
    if (grace_ms > cgrpc::kMaxMilliseconds) grace_ms = cgrpc::kMaxMilliseconds;
    const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms);
    grpc::Server *grpc_server = server->server.get();
    bool stopper_started = false;
    std::thread stopper;
    if (grpc_server != nullptr) {
        try {
            // Refuses new calls now, cancels whatever is left at the deadline, returns when all is done.
            stopper = std::thread([grpc_server, deadline] { grpc_server->Shutdown(deadline); });
            stopper_started = true;
        } catch (...) {
        }
    }
    if (!server->core->wait_idle_until(deadline)) {
        server->core->finish_all(cgrpc::kUnavailable, "server is shutting down");
    }
    if (stopper_started) {
        stopper.join();
    } else if (grpc_server != nullptr) {
        server->core->finish_all(cgrpc::kUnavailable, "server is shutting down");
        grpc_server->Shutdown(std::chrono::system_clock::now());
    }
    server->core->finish_all(cgrpc::kUnavailable, "server is shutting down");
    server->core->wait_idle();
    remove_socket_file(server);
}

}  // namespace

extern "C" int cgrpc_server_create(const char *address, uint32_t socket_mode, cgrpc_unary_handler_fn handler,
                                   void *context, cgrpc_server **out_server, char **out_error) {
    if (out_server != nullptr) *out_server = nullptr;
    if (out_error != nullptr) *out_error = nullptr;
    if (handler == nullptr || out_server == nullptr) {
        cgrpc::set_error(out_error, "cgrpc_server_create: handler and out_server are required");
        return cgrpc::kInvalidArgument;
    }
    try {
        std::unique_ptr<cgrpc_server> server(new cgrpc_server());
        std::string error;
        if (!cgrpc::parse_address(address, server->address, error)) {
            cgrpc::set_error(out_error, error);
            return cgrpc::kInvalidArgument;
        }
        if (server->address.is_unix) {
            const int code = prepare_unix_path(server->address.path, error);
            if (code != cgrpc::kOK) {
                cgrpc::set_error(out_error, error);
                return code;
            }
        }
        const int probe = probe_listen(server->address, error);
        if (probe != cgrpc::kOK) {
            cgrpc::set_error(out_error, error);
            return probe;
        }

        server->core = std::make_shared<cgrpc::ServerCore>(handler, context);
        server->service.reset(new cgrpc::GenericService(server->core));

        int selected_port = 0;
        grpc::ServerBuilder builder;
        builder.AddListeningPort(server->address.grpc_target, grpc::InsecureServerCredentials(), &selected_port);
        builder.RegisterCallbackGenericService(server->service.get());
        builder.SetMaxReceiveMessageSize(CGRPC_MAX_MESSAGE_BYTES);
        builder.SetMaxSendMessageSize(CGRPC_MAX_MESSAGE_BYTES);
        // Two servers must not share a port silently.
        builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
        server->server = builder.BuildAndStart();
        if (server->server == nullptr || selected_port == 0) {
            if (server->server != nullptr) server->server->Shutdown(std::chrono::system_clock::now());
            server->server.reset();
            int code = probe_listen(server->address, error);
            if (code == cgrpc::kOK) {
                code = cgrpc::kUnavailable;
                error = "cannot listen on " + server->address.grpc_target + " (gRPC refused the address; see its log)";
            }
            cgrpc::set_error(out_error, error);
            return code;
        }

        if (server->address.is_unix) {
            const std::string &path = server->address.path;
            struct stat info;
            int failure = 0;
            if (chmod(path.c_str(), static_cast<mode_t>(socket_mode & 07777)) != 0) {
                failure = errno;
                error = "cannot chmod socket " + path + ": " + cgrpc::errno_text(failure);
            } else if (lstat(path.c_str(), &info) == 0) {
                server->have_socket_identity = true;
                server->socket_device = info.st_dev;
                server->socket_inode = info.st_ino;
            }
            if (failure != 0) {
                stop_server(server.get(), 0);
                cgrpc::set_error(out_error, error);
                return code_for_errno(failure);
            }
        } else {
            server->port = selected_port;
        }
        *out_server = server.release();
        return cgrpc::kOK;
    } catch (const std::exception &e) {
        cgrpc::set_error(out_error, std::string("cannot start server: ") + e.what());
        return cgrpc::kInternal;
    } catch (...) {
        cgrpc::set_error(out_error, "cannot start server: unknown C++ exception");
        return cgrpc::kInternal;
    }
}

extern "C" int cgrpc_server_port(const cgrpc_server *server) { return server != nullptr ? server->port : 0; }

extern "C" void cgrpc_server_shutdown(cgrpc_server *server, int64_t grace_ms) {
    if (server == nullptr) return;
    try {
        std::unique_lock<std::mutex> lock(server->mu);
        if (server->state == cgrpc_server::State::running) {
            server->state = cgrpc_server::State::stopping;
            lock.unlock();
            stop_server(server, grace_ms);
            lock.lock();
            server->state = cgrpc_server::State::stopped;
            server->stopped.notify_all();
        } else {
            server->stopped.wait(lock, [server] { return server->state == cgrpc_server::State::stopped; });
        }
    } catch (...) {
        // Only std::system_error from the mutex could get here; nothing sensible is left to do.
    }
}

extern "C" void cgrpc_server_wait(cgrpc_server *server) {
    if (server == nullptr) return;
    try {
        std::unique_lock<std::mutex> lock(server->mu);
        server->stopped.wait(lock, [server] { return server->state == cgrpc_server::State::stopped; });
    } catch (...) {
    }
}

extern "C" void cgrpc_server_destroy(cgrpc_server *server) {
    if (server == nullptr) return;
    cgrpc_server_shutdown(server, 0);
    try {
        server->server.reset();   // before the service it serves
        server->service.reset();
        delete server;
    } catch (...) {
    }
}

extern "C" void cgrpc_call_respond(cgrpc_call *call, int status_code, const char *message, const uint8_t *response,
                                   size_t response_len) {
    if (call == nullptr) return;
    call->respond(status_code, message, response, response_len);
}

extern "C" int cgrpc_call_is_cancelled(const cgrpc_call *call) {
    return call != nullptr && call->cancelled() ? 1 : 0;
}
