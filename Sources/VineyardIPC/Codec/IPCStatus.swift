// vineyard-csi: VineyardIPC
// IPCStatus.swift: vineyard's status codes and the error frames that carry them.

import VineyardObjects

/// A vineyard status code, as carried in the `code` member of an error reply.
///
/// Only the codes this driver sends or a client must recognise are named; any other value
/// round-trips through ``rawValue``.
public struct IPCStatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int

    public init(rawValue: Int) {
        self.rawValue = rawValue
    }

    /// `Invalid` (1): a request that makes no sense in the connection's state or with its fields.
    public static let invalid = IPCStatusCode(rawValue: 1)
    /// `IOError` (4): the store failed underneath.
    public static let ioError = IPCStatusCode(rawValue: 4)
    /// `NotImplemented` (6): a command this server does not support.
    public static let notImplemented = IPCStatusCode(rawValue: 6)
    /// `AssertionFailed` (7): vineyardd's code for violated preconditions (persisting a blob,
    /// metadata without `instance_id`).
    public static let assertionFailed = IPCStatusCode(rawValue: 7)
    /// `ObjectNotExists` (12).
    public static let objectNotExists = IPCStatusCode(rawValue: 12)
    /// `ObjectSealed` (13).
    public static let objectSealed = IPCStatusCode(rawValue: 13)
    /// `ObjectNotSealed` (14): buffers of an unsealed blob asked for without `unsafe`.
    public static let objectNotSealed = IPCStatusCode(rawValue: 14)
    /// `MetaTreeInvalid` (21).
    public static let metaTreeInvalid = IPCStatusCode(rawValue: 21)
    /// `MetaTreeSubtreeNotExists` (27): persist of an unknown object.
    public static let metaTreeSubtreeNotExists = IPCStatusCode(rawValue: 27)
    /// `NotEnoughMemory` (41).
    public static let notEnoughMemory = IPCStatusCode(rawValue: 41)
    /// `ObjectExists` (11).
    public static let objectExists = IPCStatusCode(rawValue: 11)
    /// `StreamDrained` (42): the writer finished and every chunk was taken (the reader's end).
    public static let streamDrained = IPCStatusCode(rawValue: 42)
    /// `StreamFailed` (43): the writer gave up or the stream was dropped.
    public static let streamFailed = IPCStatusCode(rawValue: 43)
    /// `InvalidStreamState` (44).
    public static let invalidStreamState = IPCStatusCode(rawValue: 44)
    /// `StreamOpened` (45): that side of the stream is taken already.
    public static let streamOpened = IPCStatusCode(rawValue: 45)

    public var description: String { String(rawValue) }
}

/// A failed request: the `{"code":N,"message":"…"}` frame sent instead of the reply.
///
/// The connection stays usable after an error reply; only framing and socket failures end it.
public struct IPCError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: IPCStatusCode
    public var message: String

    public init(_ code: IPCStatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The error frame's JSON.
    public var json: JSONValue {
        ["code": JSONValue(integer: code.rawValue), "message": .string(message)]
    }

    /// Reads an error frame: a JSON object with a non-zero integer `code`. Returns `nil` for
    /// anything else (a normal reply).
    ///
    /// - Parameter json: a reply frame.
    public init?(reply json: JSONValue) {
        guard let code = json["code"]?.int64Value, code != 0 else { return nil }
        self.code = IPCStatusCode(rawValue: Int(code))
        self.message = json["message"]?.stringValue ?? ""
    }

    public var description: String { "vineyard status \(code): \(message)" }
}
