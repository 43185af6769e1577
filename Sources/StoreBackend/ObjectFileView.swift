// vineyard-csi: StoreBackend
// ObjectFileView.swift: how the embedded store's tensors and data frames read as .npy files.

import SharedMemoryStore

/// The file a vineyard object (other than a blob) reads as, so that objects put through the
/// volume's vineyard socket are useful files too:
///
/// - a `vineyard::Tensor<T>` reads as a NumPy `.npy` file (format 1.0; 2.0 or 3.0 when the
///   header needs it): a header synthesized from the metadata (`value_type_meta_`, `shape_`;
///   always C order, which is how vineyard stores the bytes) followed by the tensor's blob,
///   served straight from shared memory. `numpy.load(path)` returns the array.
/// - a `vineyard::DataFrame` of 1-D numeric columns reads as a `.npy` file holding a
///   *structured* array with one field per column, in column order, named by the column
///   label (`str()` of non-string labels, a `_<n>` suffix on repeats): `numpy.load(path)`
///   gives the records and `pandas.DataFrame(numpy.load(path))` the frame (the index is not
///   included). Rows are interleaved from the column blobs on each read; nothing is
///   materialized.
/// - anything else reads as an empty file (as before).
///
/// The view is computed from the metadata alone, so sizes cost no store access.
struct ObjectFileView {
    enum Layout {
        case tensor(blob: ObjectID, dataSize: Int)
        case frame(columns: [Column], rows: Int, recordSize: Int)
    }

    struct Column {
        let blob: ObjectID
        let itemSize: Int
    }

    let header: [UInt8]
    let layout: Layout

    var dataSize: Int {
        switch layout {
        case .tensor(_, let dataSize): return dataSize
        case .frame(_, let rows, let recordSize): return rows * recordSize
        }
    }

    /// The file's size: header and data.
    var size: Int { header.count + dataSize }

    /// The view of an object, or `nil` when it has none (blobs, unknown types, metadata that
    /// does not describe a plain numeric array).
    init?(meta: ObjectMeta) {
        if meta.typename.hasPrefix("vineyard::Tensor<") {
            guard let tensor = Self.tensor(meta) else { return nil }
            header = Self.header(descr: "'" + tensor.descr + "'", shape: tensor.shape)
            layout = .tensor(blob: tensor.blob, dataSize: tensor.dataSize)
        } else if meta.typename == "vineyard::DataFrame" {
            guard let count = meta.fields["__values_-size"]?.int64Value, count >= 0, count < 1 << 16 else {
                return nil
            }
            var fields: [String] = []
            var columns: [Column] = []
            var rows: Int?
            var used: Set<String> = []
            for index in 0..<Int(count) {
                guard let member = meta.members["__values_-value-\(index)"], let tensor = Self.tensor(member),
                    tensor.shape.count == 1, rows == nil || rows == tensor.shape[0]
                else { return nil }
                rows = tensor.shape[0]
                var label = Self.label(meta.fields["__values_-key-\(index)"]) ?? String(index)
                if used.contains(label) {
                    var suffix = 1
                    while used.contains("\(label)_\(suffix)") { suffix += 1 }
                    label = "\(label)_\(suffix)"
                }
                used.insert(label)
                fields.append("(" + Self.pythonString(label) + ", '" + tensor.descr + "')")
                columns.append(Column(blob: tensor.blob, itemSize: tensor.itemSize))
            }
            let rowCount = rows ?? 0
            header = Self.header(descr: "[" + fields.joined(separator: ", ") + "]", shape: [rowCount])
            layout = .frame(columns: columns, rows: rowCount, recordSize: columns.reduce(0) { $0 + $1.itemSize })
        } else {
            return nil
        }
    }

    // MARK: - Reading

    /// Bytes `offset..<offset+size` of the file (fewer only at the end). Tensor data is
    /// served in place from the blob (the blob's handle keeps it alive until the reply is
    /// sent); the header and frame rows are assembled.
    func read(store: ObjectStore, offset: Int, size: Int) -> FileBytes {
        let end = min(self.size, offset + size)
        guard offset < end else { return .empty }
        switch layout {
        case .tensor(let blob, _):
            if offset >= header.count, let handle = store.object(blob) {
                let start = offset - header.count
                let stop = end - header.count
                if stop <= handle.size {
                    return .mapped([UnsafeRawBufferPointer(rebasing: handle.bytes[start..<stop])], keepAlive: handle)
                }
            }
            return .copied(assemble(store: store, offset: offset, end: end))
        case .frame:
            return .copied(assemble(store: store, offset: offset, end: end))
        }
    }

    /// Copies bytes `offset..<end` of the file. Bytes a blob lacks (inconsistent metadata)
    /// read as zeros.
    private func assemble(store: ObjectStore, offset: Int, end: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: end - offset)
        if offset < header.count {
            let stop = min(end, header.count)
            output.replaceSubrange(0..<(stop - offset), with: header[offset..<stop])
        }
        let dataStart = max(offset, header.count) - header.count
        let dataEnd = end - header.count
        guard dataStart < dataEnd else { return output }
        let outputBase = dataStart + header.count - offset
        output.withUnsafeMutableBytes { raw in
            switch layout {
            case .tensor(let blob, _):
                guard let handle = store.object(blob) else { return }
                let available = min(dataEnd, handle.size)
                if dataStart < available {
                    (raw.baseAddress! + outputBase).copyMemory(
                        from: handle.bytes.baseAddress! + dataStart, byteCount: available - dataStart)
                }
            case .frame(let columns, _, let recordSize):
                guard recordSize > 0 else { return }
                let handles = columns.map { store.object($0.blob) }
                var fieldOffsets: [Int] = []
                var running = 0
                for column in columns {
                    fieldOffsets.append(running)
                    running += column.itemSize
                }
                var record = [UInt8](repeating: 0, count: recordSize)
                for row in (dataStart / recordSize)...((dataEnd - 1) / recordSize) {
                    record.withUnsafeMutableBytes { recordBytes in
                        for (index, column) in columns.enumerated() {
                            let source = row * column.itemSize
                            let target = recordBytes.baseAddress! + fieldOffsets[index]
                            if let handle = handles[index], source + column.itemSize <= handle.size {
                                target.copyMemory(from: handle.bytes.baseAddress! + source, byteCount: column.itemSize)
                            } else {
                                target.initializeMemory(as: UInt8.self, repeating: 0, count: column.itemSize)
                            }
                        }
                    }
                    let rowStart = row * recordSize
                    let from = max(rowStart, dataStart)
                    let to = min(rowStart + recordSize, dataEnd)
                    record.withUnsafeBytes { recordBytes in
                        (raw.baseAddress! + outputBase + (from - dataStart)).copyMemory(
                            from: recordBytes.baseAddress! + (from - rowStart), byteCount: to - from)
                    }
                }
            }
        }
        return output
    }

    // MARK: - Metadata

    private struct Tensor {
        let blob: ObjectID
        let descr: String
        let itemSize: Int
        let shape: [Int]
        var dataSize: Int { shape.reduce(itemSize, *) }
    }

    /// A numeric tensor's blob, dtype and shape, from vineyard's Tensor metadata
    /// (`buffer_`, `value_type_meta_` or `value_type_`, `shape_` as JSON in a string).
    private static func tensor(_ meta: ObjectMeta) -> Tensor? {
        guard meta.typename.hasPrefix("vineyard::Tensor<"), let blob = meta.members["buffer_"]?.id, blob.isBlob,
            let shapeText = meta.fields["shape_"]?.stringValue,
            let shapeJSON = try? JSONValue(parsing: shapeText), let dimensions = shapeJSON.arrayValue
        else { return nil }
        var shape: [Int] = []
        var elements = 1
        for dimension in dimensions {
            guard let value = dimension.int64Value, value >= 0, value < 1 << 40 else { return nil }
            shape.append(Int(value))
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int(value))
            guard !overflow else { return nil }
            elements = product
        }
        let descr =
            meta.fields["value_type_meta_"]?.stringValue
            ?? meta.fields["value_type_"]?.stringValue.flatMap { dtypeDescriptors[$0] }
        guard let descr, let itemSize = itemSize(descr) else { return nil }
        guard !elements.multipliedReportingOverflow(by: itemSize).overflow else { return nil }
        return Tensor(blob: blob, descr: descr, itemSize: itemSize, shape: shape)
    }

    /// NumPy type strings of dtype names, for tensors without `value_type_meta_`.
    private static let dtypeDescriptors: [String: String] = [
        "bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4",
        "uint32": "<u4", "int64": "<i8", "uint64": "<u8", "float16": "<f2", "float32": "<f4", "float64": "<f8",
        "complex64": "<c8", "complex128": "<c16",
    ]

    /// The item size of a fixed-size NumPy type string (`<f8`, `|b1`, `<M8[ns]`, `|S10`,
    /// `<U4`), or `nil` for types whose bytes are not the values (objects, pointers).
    private static func itemSize(_ descr: String) -> Int? {
        let bytes = Array(descr.utf8)
        guard bytes.count >= 3, "<>|=".utf8.contains(bytes[0]), "biufcmMSUV".utf8.contains(bytes[1]) else {
            return nil
        }
        var digits = bytes[2...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        let rest = bytes[(2 + digits.count)...]
        guard !digits.isEmpty, digits.count < 10, rest.isEmpty || (rest.first == UInt8(ascii: "[") && rest.last == UInt8(ascii: "]"))
        else { return nil }
        if digits.first == UInt8(ascii: "0") && digits.count > 1 { digits = digits.dropFirst() }
        guard let count = Int(String(decoding: digits, as: UTF8.self)), count > 0 else { return nil }
        return bytes[1] == UInt8(ascii: "U") ? count * 4 : count
    }

    /// A column label from `__values_-key-<i>` (JSON in a string): the string itself, or the
    /// JSON text of other labels (`0`, `1.5`).
    private static func label(_ value: JSONValue?) -> String? {
        guard let text = value?.stringValue, let json = try? JSONValue(parsing: text) else { return nil }
        if let string = json.stringValue { return string }
        return json.serialized()
    }

    // MARK: - The .npy header

    /// The `.npy` preamble and header for a dtype description (Python literal) and shape,
    /// padded with spaces so the data starts at a multiple of 64 bytes, as NumPy writes it.
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let shapeText =
            shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        let dictionary = Array("{'descr': \(descr), 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let ascii = dictionary.allSatisfy { $0 < 0x80 }
        // 1.0 has a 2-byte length and Latin-1 text; 2.0 a 4-byte length; 3.0 UTF-8 text.
        let major: UInt8 = !ascii ? 3 : (dictionary.count + 12 > 0xFFFF ? 2 : 1)
        let prefixLength = 6 + 2 + (major == 1 ? 2 : 4)
        let unpadded = prefixLength + dictionary.count + 1
        let headerLength = (unpadded + 63) / 64 * 64 - prefixLength
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let length = UInt32(headerLength)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF)]
        if major != 1 { bytes += [UInt8(length >> 16 & 0xFF), UInt8(length >> 24 & 0xFF)] }
        bytes += dictionary
        bytes += [UInt8](repeating: UInt8(ascii: " "), count: headerLength - dictionary.count - 1)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// A Python string literal (NumPy parses the header with `ast.literal_eval`).
    static func pythonString(_ text: String) -> String {
        var result = "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "'": result += "\\'"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\x" + (hex.count < 2 ? "0" + hex : hex)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "'"
    }
}
