import Foundation
import LiandongCore

/// An append-only file that holds received messages once the in-memory queue is full (typically
/// while the database is away). The ingest thread appends; the writer reads in order and, after
/// each commit, records how far it got in `<path>.offset` (fsync'd), so a crash replays at most the
/// last uncommitted read — harmless, since ids deduplicate. When everything is consumed the file
/// is truncated. Records: [u32 size][f64 receivedAt][u16 endpoint length][endpoint]
/// [u32 frame count]{[u32 length][bytes]}*, little-endian. With an authenticated sender the
/// endpoint field reads "endpoint␟name␟role␟scope" (U+001F between them; older records have none).
public final class SpillFile: @unchecked Sendable {
    // @unchecked: every access to the file state happens with `lock` held.
    private let lock = NSLock()
    public let path: String
    public let maxBytes: Int
    private let handle: FileHandle
    private var writeOffset: UInt64
    private var readOffset: UInt64

    public init(path: String, maxBytes: Int) throws {
        self.path = path
        self.maxBytes = maxBytes
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw StorageError("cannot create the spill file \(path) (ingest.spill_path): check the directory exists and is writable")
            }
        }
        guard let h = FileHandle(forUpdatingAtPath: path) else {
            throw StorageError("cannot open the spill file \(path) (ingest.spill_path) for writing")
        }
        handle = h
        writeOffset = h.seekToEndOfFile()
        let saved = (try? String(contentsOfFile: path + ".offset", encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        readOffset = min(saved ?? 0, writeOffset)
    }

    deinit { try? handle.close() }

    /// Bytes written and not yet consumed.
    public var pendingBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return Int(writeOffset - readOffset)
    }

    public var isEmpty: Bool { pendingBytes == 0 }

    /// Appends one message; false when the file has reached `maxBytes` (the caller waits).
    public func append(_ raw: RawMessage) -> Bool { appendAll([raw]) == 1 }

    /// Appends messages in order until one does not fit; returns how many were appended. One
    /// write for all of them: in the file (the page cache) once this returns, so a kill -9
    /// afterwards loses none of them.
    public func appendAll(_ raws: [RawMessage]) -> Int {
        guard !raws.isEmpty else { return 0 }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(raws.reduce(0) { $0 + 64 + $1.endpoint.utf8.count + $1.frames.reduce(0) { $0 + $1.count + 4 } })
        var ends: [Int] = []
        ends.reserveCapacity(raws.count)
        for raw in raws {
            Self.encode(raw, into: &buffer)
            ends.append(buffer.count)
        }
        lock.lock()
        defer { lock.unlock() }
        let room = maxBytes - Int(writeOffset - readOffset)
        var fitting = 0
        while fitting < ends.count && ends[fitting] <= room { fitting += 1 }
        guard fitting > 0 else { return 0 }
        let length = ends[fitting - 1]
        handle.seek(toFileOffset: writeOffset)
        handle.write(Data(buffer[0..<length]))
        writeOffset += UInt64(length)
        return fitting
    }

    /// One record: its size, then the arrival time, the endpoint and the frames.
    private static func encode(_ raw: RawMessage, into out: inout [UInt8]) {
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out.append(contentsOf: $0) } }
        let start = out.count
        u32(0)  // the size, filled in below
        withUnsafeBytes(of: raw.receivedAt.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        var field = raw.endpoint
        if let s = raw.sender { field += "\u{1F}\(s.name)\u{1F}\(s.role?.rawValue ?? "")\u{1F}\(s.scope)" }
        let endpoint = Array(field.utf8.prefix(1024))
        withUnsafeBytes(of: UInt16(endpoint.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: endpoint)
        u32(raw.frames.count)
        for f in raw.frames {
            u32(f.count)
            out.append(contentsOf: f)
        }
        withUnsafeBytes(of: UInt32(out.count - start - 4).littleEndian) { size in
            for (k, byte) in size.enumerated() { out[start + k] = byte }
        }
    }

    /// Reads up to `max` messages after the consumed point, or after `from` (the end of a read
    /// not yet committed); returns them and the offset to pass to `commit` once they are written.
    public func read(max: Int, from: UInt64? = nil) -> (messages: [RawMessage], end: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        let start = Swift.max(readOffset, from ?? 0)
        guard start < writeOffset, max > 0 else { return ([], start) }
        let available = Int(writeOffset - start)
        // Read about what `max` records need (not the whole backlog); grow when one record is larger.
        var length = min(available, Swift.max(64 << 10, max * 1024))
        while true {
            handle.seek(toFileOffset: start)
            let bytes = [UInt8](handle.readData(ofLength: length))
            let (messages, used) = Self.parse(bytes, max: max)
            if !messages.isEmpty || length >= available || bytes.count < length {
                return (messages, start + UInt64(used))
            }
            length = min(available, length * 2)
        }
    }

    /// Complete records at the start of `bytes` (at most `max`) and the bytes they take.
    private static func parse(_ data: [UInt8], max: Int) -> ([RawMessage], Int) {
        var messages: [RawMessage] = []
        var pos = 0
        func load<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
        }
        while messages.count < max && pos + 4 <= data.count {
            let size = Int(load(pos, UInt32.self))
            guard pos + 4 + size <= data.count else { break }
            var p = pos + 4
            let bits = load(p, UInt64.self)
            p += 8
            let endpointLength = Int(load(p, UInt16.self))
            p += 2
            let field = String(decoding: data[p..<(p + endpointLength)], as: UTF8.self)
            p += endpointLength
            let parts = field.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            let sender = parts.count == 4 ? Sender(name: parts[1], role: PeerRole(rawValue: parts[2]), scope: parts[3]) : nil
            let count = Int(load(p, UInt32.self))
            p += 4
            var frames: [[UInt8]] = []
            for _ in 0..<count {
                let length = Int(load(p, UInt32.self))
                p += 4
                frames.append(Array(data[p..<(p + length)]))
                p += length
            }
            messages.append(RawMessage(endpoint: parts[0], frames: frames, receivedAt: Double(bitPattern: bits), sender: sender))
            pos += 4 + size
        }
        return (messages, pos)
    }

    /// Records that everything before `offset` is committed; truncates the file once all is.
    public func commit(_ offset: UInt64) throws {
        lock.lock()
        defer { lock.unlock() }
        readOffset = max(readOffset, offset)
        if readOffset >= writeOffset {
            handle.truncateFile(atOffset: 0)
            handle.synchronizeFile()
            writeOffset = 0
            readOffset = 0
        }
        let marker = path + ".offset"
        try String(readOffset).write(toFile: marker, atomically: true, encoding: .utf8)
    }
}
