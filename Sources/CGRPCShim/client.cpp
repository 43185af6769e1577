// The unary client: a channel plus blocking and asynchronous byte-level calls.
//
// The asynchronous form uses gRPC's callback API. A cgrpc_client_call carries two references: one
// for gRPC's completion and one for the caller (released with cgrpc_client_call_release), so the
// caller may cancel at any time until it lets go, no matter when the completion runs.
// The blocking form polls a completion queue of its own on the calling thread, as gRPC's
// synchronous API does, which saves a thread handoff per call.
#include "CGRPCShim.h"
#include "shim_internal.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>

struct cgrpc_channel {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<grpc::GenericStub> stub;
};

struct cgrpc_client_call {
    std::atomic<int> references{2};
    std::shared_ptr<grpc::Channel> channel;  // keeps the channel alive for the whole call
    grpc::ClientContext context;
    std::string method;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    cgrpc_completion_fn completion = nullptr;
    void *completion_context = nullptr;

    void unreference() {
        if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// unreference() for gRPC's completion callback. When the caller has already let go, the
    /// call may hold the last reference to its channel, and a channel must not be destroyed on
    /// the callback's own thread: gRPC's callback threads (CallbackAlternativeCQ) are shut down
    /// and joined with the last channel, and a thread cannot join itself (the process aborts
    /// later with "assertion failed: prior > 0"). The last release then happens on a thread
    /// of its own.
    void unreference_from_callback() noexcept {
        if (references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        try {
            std::thread([this] { delete this; }).detach();
        } catch (...) {
            delete this;  // no thread to spare: the old behaviour, still correct in most cases
        }
    }

    void complete(const grpc::Status &status) noexcept {
        try {
            if (status.ok()) {
                cgrpc::FlatBytes bytes;
                if (bytes.load(response)) {
                    completion(completion_context, cgrpc::kOK, nullptr, bytes.data, bytes.size);
                } else {
                    completion(completion_context, cgrpc::kInternal, "cannot read the response message", nullptr, 0);
                }
            } else {
                const std::string message = status.error_message();
                completion(completion_context, static_cast<int>(status.error_code()), message.c_str(), nullptr, 0);
            }
        } catch (...) {
            completion(completion_context, cgrpc::kInternal, "cannot deliver the response", nullptr, 0);
        }
    }
};

extern "C" int cgrpc_channel_create(const char *target, cgrpc_channel **out_channel, char **out_error) {
    if (out_channel != nullptr) *out_channel = nullptr;
    if (out_error != nullptr) *out_error = nullptr;
    if (out_channel == nullptr) {
        cgrpc::set_error(out_error, "cgrpc_channel_create: out_channel is required");
        return cgrpc::kInvalidArgument;
    }
    try {
        cgrpc::Address address;
        std::string error;
        if (!cgrpc::parse_address(target, address, error)) {
            cgrpc::set_error(out_error, error);
            return cgrpc::kInvalidArgument;
        }
        grpc::ChannelArguments arguments;
        arguments.SetMaxReceiveMessageSize(CGRPC_MAX_MESSAGE_BYTES);
        arguments.SetMaxSendMessageSize(CGRPC_MAX_MESSAGE_BYTES);
        std::unique_ptr<cgrpc_channel> channel(new cgrpc_channel());
        channel->channel =
            grpc::CreateCustomChannel(address.grpc_target, grpc::InsecureChannelCredentials(), arguments);
        if (channel->channel == nullptr) {
            cgrpc::set_error(out_error, "cannot create a channel to " + address.grpc_target);
            return cgrpc::kInternal;
        }
        channel->stub.reset(new grpc::GenericStub(channel->channel));
        *out_channel = channel.release();
        return cgrpc::kOK;
    } catch (const std::exception &e) {
        cgrpc::set_error(out_error, std::string("cannot create channel: ") + e.what());
        return cgrpc::kInternal;
    } catch (...) {
        cgrpc::set_error(out_error, "cannot create channel: unknown C++ exception");
        return cgrpc::kInternal;
    }
}

extern "C" void cgrpc_channel_destroy(cgrpc_channel *channel) {
    try {
        delete channel;
    } catch (...) {
    }
}

extern "C" cgrpc_client_call *cgrpc_channel_call_async(cgrpc_channel *channel, const char *method,
                                                       const uint8_t *request, size_t request_len,
                                                       int64_t timeout_ms, cgrpc_completion_fn completion,
                                                       void *context) {
    if (completion == nullptr) return nullptr;
    if (channel == nullptr || method == nullptr) {
        completion(context, cgrpc::kInvalidArgument, "cgrpc_channel_call_async: channel and method are required",
                   nullptr, 0);
        return nullptr;
    }
    cgrpc_client_call *call = nullptr;
    try {
        call = new cgrpc_client_call();
        call->channel = channel->channel;
        call->method = method;
        call->request = cgrpc::make_buffer(request, request_len);
        call->completion = completion;
        call->completion_context = context;
        if (timeout_ms > cgrpc::kMaxMilliseconds) timeout_ms = cgrpc::kMaxMilliseconds;
        if (timeout_ms > 0) {
            call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
        }
    } catch (...) {
        delete call;
        completion(context, cgrpc::kResourceExhausted, "cannot allocate the call", nullptr, 0);
        return nullptr;
    }
    try {
        channel->stub->UnaryCall(&call->context, call->method, grpc::StubOptions(), &call->request, &call->response,
                                 [call](grpc::Status status) {
                                     call->complete(status);
                                     call->unreference_from_callback();
                                 });
    } catch (...) {
        // gRPC did not take the call: complete it here, dropping gRPC's reference ourselves.
        call->completion(call->completion_context, cgrpc::kInternal, "cannot start the call", nullptr, 0);
        call->unreference();
    }
    return call;
}

extern "C" void cgrpc_client_call_cancel(cgrpc_client_call *call) {
    if (call == nullptr) return;
    try {
        call->context.TryCancel();
    } catch (...) {
    }
}

extern "C" void cgrpc_client_call_release(cgrpc_client_call *call) {
    if (call != nullptr) call->unreference();
}

extern "C" int cgrpc_channel_call(cgrpc_channel *channel, const char *method, const uint8_t *request,
                                  size_t request_len, int64_t timeout_ms, uint8_t **out_response,
                                  size_t *out_response_len, int *out_status_code, char **out_message) {
    if (out_response != nullptr) *out_response = nullptr;
    if (out_response_len != nullptr) *out_response_len = 0;
    if (out_message != nullptr) *out_message = nullptr;
    int code = cgrpc::kInternal;
    std::string message;
    if (channel == nullptr || method == nullptr) {
        code = cgrpc::kInvalidArgument;
        message = "cgrpc_channel_call: channel and method are required";
    } else {
        try {
            // Like gRPC's own synchronous API: a completion queue for this call alone, polled by the
            // calling thread, so the response wakes this thread directly rather than via a handoff.
            grpc::ClientContext context;
            if (timeout_ms > cgrpc::kMaxMilliseconds) timeout_ms = cgrpc::kMaxMilliseconds;
            if (timeout_ms > 0) {
                context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
            }
            grpc::CompletionQueue queue;
            const grpc::ByteBuffer request_buffer = cgrpc::make_buffer(request, request_len);
            grpc::ByteBuffer response_buffer;
            grpc::Status status;
            {
                std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
                    channel->stub->PrepareUnaryCall(&context, method, request_buffer, &queue);
                call->StartCall();
                void *const finished = &status;
                call->Finish(&response_buffer, &status, finished);
                void *tag = nullptr;
                bool ok = false;
                while (queue.Next(&tag, &ok) && tag != finished) {
                }
                queue.Shutdown();
                while (queue.Next(&tag, &ok)) {
                }
            }
            code = static_cast<int>(status.error_code());
            if (status.ok()) {
                cgrpc::FlatBytes bytes;
                if (!bytes.load(response_buffer)) {
                    code = cgrpc::kInternal;
                    message = "cannot read the response message";
                } else if (out_response != nullptr && bytes.size > 0) {
                    uint8_t *copy = static_cast<uint8_t *>(std::malloc(bytes.size));
                    if (copy == nullptr) {
                        code = cgrpc::kResourceExhausted;
                        message = "cannot allocate the response";
                    } else {
                        std::memcpy(copy, bytes.data, bytes.size);
                        *out_response = copy;
                        if (out_response_len != nullptr) *out_response_len = bytes.size;
                    }
                }
            } else {
                message = status.error_message();
            }
        } catch (const std::exception &e) {
            code = cgrpc::kInternal;
            message = std::string("cgrpc_channel_call: ") + e.what();
        } catch (...) {
            code = cgrpc::kInternal;
            message = "cgrpc_channel_call: unknown C++ exception";
        }
    }
    if (code != cgrpc::kOK && out_message != nullptr && !message.empty()) *out_message = cgrpc::dup_string(message);
    if (out_status_code != nullptr) *out_status_code = code;
    return code;
}
