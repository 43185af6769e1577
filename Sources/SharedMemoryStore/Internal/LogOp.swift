// vineyard-csi: SharedMemoryStore
// LogOp.swift: the operations recorded in the metadata log.

/// The first operation of every log file: what the store is and which boot wrote it.
struct LogHeader: Equatable, Sendable {
    /// Identifies the file format ("VYSTORE1").
    static let magic: UInt64 = 0x3145_524F_5453_5956
    static let formatVersion: UInt32 = 1

    var bootID: String
    var capacity: Int
    var arenaCount: Int
    /// The highest identifier value ever generated (without the blob bit), so identifiers of
    /// deleted objects are never reused.
    var lastID: UInt64
    var instanceID: UInt64
}

/// One state change. A log record holds one or more operations that take effect together, so
/// for example sealing a blob and naming it is a single atomic record.
enum LogOp: Sendable {
    case header(LogHeader)
    /// A sealed object: its metadata (compact JSON) and, for blobs with bytes, where they are
    /// (for a blob in its own file, without the path: it is derived from the identifier).
    case putObject(id: ObjectID, location: BlobLocation?, meta: [UInt8])
    case deleteObject(ObjectID)
    case putName(String, ObjectID)
    case deleteName(String)
    case replaceMeta(ObjectID, meta: [UInt8])

    private enum Tag: UInt8 {
        case header = 1
        case putObject = 2
        case deleteObject = 3
        case putName = 4
        case deleteName = 5
        case replaceMeta = 6
    }

    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .header(let header):
            writer.write(Tag.header.rawValue)
            writer.write(LogHeader.magic)
            writer.write(LogHeader.formatVersion)
            writer.write(string: header.bootID)
            writer.write(header.capacity)
            writer.write(header.arenaCount)
            writer.write(header.lastID)
            writer.write(header.instanceID)
        case .putObject(let id, let location, let meta):
            writer.write(Tag.putObject.rawValue)
            writer.write(id.rawValue)
            if let location {
                writer.write(UInt8(1))
                // A blob in its own file is recorded as arena 0xFFFFFFFF; the file's path follows
                // from the identifier and the directory, so it is not recorded.
                writer.write(location.isOwnFile ? UInt32.max : UInt32(location.arena))
                writer.write(location.offset)
                writer.write(location.size)
            } else {
                writer.write(UInt8(0))
            }
            writer.write(bytes: meta)
        case .deleteObject(let id):
            writer.write(Tag.deleteObject.rawValue)
            writer.write(id.rawValue)
        case .putName(let name, let id):
            writer.write(Tag.putName.rawValue)
            writer.write(string: name)
            writer.write(id.rawValue)
        case .deleteName(let name):
            writer.write(Tag.deleteName.rawValue)
            writer.write(string: name)
        case .replaceMeta(let id, let meta):
            writer.write(Tag.replaceMeta.rawValue)
            writer.write(id.rawValue)
            writer.write(bytes: meta)
        }
    }

    static func decode(from reader: inout BinaryReader) throws(BinaryReader.Malformed) -> LogOp {
        guard let tag = Tag(rawValue: try reader.readByte()) else { throw BinaryReader.Malformed() }
        switch tag {
        case .header:
            guard try reader.readUInt64() == LogHeader.magic, try reader.readUInt32() == LogHeader.formatVersion else {
                throw BinaryReader.Malformed()
            }
            return .header(
                LogHeader(
                    bootID: try reader.readString(), capacity: try reader.readInt(), arenaCount: try reader.readInt(),
                    lastID: try reader.readUInt64(), instanceID: try reader.readUInt64()))
        case .putObject:
            let id = ObjectID(try reader.readUInt64())
            var location: BlobLocation?
            switch try reader.readByte() {
            case 0: location = nil
            case 1:
                let arena = try reader.readUInt32()
                location = BlobLocation(
                    arena: arena == UInt32.max ? BlobLocation.ownFileArena : Int(arena), offset: try reader.readInt(),
                    size: try reader.readInt())
            default: throw BinaryReader.Malformed()
            }
            return .putObject(id: id, location: location, meta: try reader.readBytes())
        case .deleteObject:
            return .deleteObject(ObjectID(try reader.readUInt64()))
        case .putName:
            return .putName(try reader.readString(), ObjectID(try reader.readUInt64()))
        case .deleteName:
            return .deleteName(try reader.readString())
        case .replaceMeta:
            return .replaceMeta(ObjectID(try reader.readUInt64()), meta: try reader.readBytes())
        }
    }
}
