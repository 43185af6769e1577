// vineyard-csi: VineyardIPC
// StoreMappings.swift: the client's per-connection table of received and mapped store files.

import Glibc
import POSIXCore

/// One store file vineyardd sent, mapped; unmapped when the last reference goes, so bytes
/// handed out (``MappedBuffer/owner``) stay readable after the connection is gone.
final class StoreMapping: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int
    /// The local descriptor received with `SCM_RIGHTS`; kept open while mapped.
    let descriptor: Int32

    init(base: UnsafeMutableRawPointer, length: Int, descriptor: Int32) {
        self.base = base
        self.length = length
        self.descriptor = descriptor
    }

    deinit {
        munmap(base, length)
        Glibc.close(descriptor)
    }
}

/// The shared-memory files a vineyardd sent on one connection, each mapped once.
///
/// Keyed by the *server's* descriptor number (``IPCPayload/storeFD``), as vineyard's own client
/// does: the server sends each store file once per connection and then only names it. Each file
/// is mapped read-write once (vineyardd opens it read-write, and the create path writes into
/// it), `map_size - 8` bytes from offset 0 (vineyardd's allocator adds 8 bytes of slack it
/// never hands out). Not thread-safe: the owning client serializes access.
struct StoreMappings {
    private var mappings: [Int32: StoreMapping] = [:]

    func contains(_ storeFD: Int32) -> Bool { mappings[storeFD] != nil }

    /// Maps a descriptor just received for `storeFD`. Takes ownership of `descriptor`.
    mutating func add(storeFD: Int32, descriptor: Int32, mapSize: Int) throws(VineyardClientError) {
        let length = max(mapSize - 8, 0)
        guard length > 0 else {
            Glibc.close(descriptor)
            throw .protocolViolation("store file \(storeFD) announced with map_size \(mapSize)")
        }
        let base: UnsafeMutableRawPointer
        do {
            base = try syscallMapping { mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0) }
        } catch {
            Glibc.close(descriptor)
            throw .protocolViolation("cannot map store file \(storeFD): \(error)")
        }
        mappings[storeFD] = StoreMapping(base: base, length: length, descriptor: descriptor)
    }

    /// The bytes a payload describes, checked against the mapping's bounds.
    func buffer(of payload: IPCPayload) throws(VineyardClientError) -> MappedBuffer {
        guard payload.needsMapping else { return MappedBuffer(id: payload.objectID, start: nil, count: 0, owner: nil) }
        guard let mapping = mappings[payload.storeFD] else {
            throw .protocolViolation("blob \(payload.objectID) lies in store file \(payload.storeFD), which was never sent")
        }
        guard payload.dataOffset >= 0, payload.dataSize >= 0, payload.dataOffset + payload.dataSize <= mapping.length else {
            throw .protocolViolation("blob \(payload.objectID) lies outside its store file's \(mapping.length) bytes")
        }
        return MappedBuffer(id: payload.objectID, start: mapping.base + payload.dataOffset, count: payload.dataSize, owner: mapping)
    }

    /// Forgets every mapping; each is unmapped once no ``MappedBuffer`` refers to it.
    mutating func removeAll() {
        mappings = [:]
    }
}
