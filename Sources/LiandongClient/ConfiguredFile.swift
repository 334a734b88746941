import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file a setting names (a key file, the peers file, a passwords file), read with errors that
/// say which setting named it, why this process cannot read it, and the command that fixes it —
/// not Foundation's "NSCocoaErrorDomain Code=257".
public struct ConfiguredFile: Sendable {
    /// The setting that names the file, as the operator wrote it ("security.secret_key_file", "--curve-key").
    public let setting: String
    public let path: String
    /// Refuse the file when its group or others may read it (secrets).
    public let secret: Bool

    public init(setting: String, path: String, secret: Bool) {
        self.setting = setting
        self.path = path
        self.secret = secret
    }

    /// The file's text (UTF-8), or an error phrased for the operator.
    public func read() throws -> String {
        try checkMode()
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CurveKeyError(explain(errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw CurveKeyError(explain(errno)) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= 16 << 20 else { throw CurveKeyError("\(setting): \(path) is larger than 16 MiB; is it the right file?") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CurveKeyError("\(setting): \(path) is not UTF-8 text")
        }
        return text
    }

    /// Checks that this process can read the file (and, with `user`, that that account can: the
    /// unit's User=), without reading it. For check-config.
    public func checkReadable(byUser user: String? = nil) throws {
        try checkMode()
        if access(path, R_OK) != 0 { throw CurveKeyError(explain(errno)) }
        guard let user else { return }
        guard let account = getpwnam(user) else { throw CurveKeyError("no such user \(user)") }
        let uid = account.pointee.pw_uid, gid = account.pointee.pw_gid
        // The file and every directory above it, as that account would meet them.
        var components = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
        var checked: [(String, mode_t)] = []
        var prefix = ""
        while !components.isEmpty {
            let part = components.removeFirst()
            prefix = part == "/" ? "/" : (prefix == "/" ? "/" + part : prefix + "/" + part)
            checked.append((prefix, components.isEmpty ? 0o4 : 0o1))
        }
        for (item, need) in checked {
            var info = stat()
            guard stat(item, &info) == 0 else { throw CurveKeyError(explain(errno)) }
            if uid == 0 { continue }
            let bits: mode_t = info.st_uid == uid ? (info.st_mode >> 6) & 0o7
                : (info.st_gid == gid ? (info.st_mode >> 3) & 0o7 : info.st_mode & 0o7)
            guard bits & need == need else {
                let what = need == 0o4 ? "read \(item)" : "enter the directory \(item)"
                throw CurveKeyError("\(setting): the user \(user) cannot \(what) (\(Self.describe(info))): "
                    + "chown \(user): \(item)" + (need == 0o4 && secret ? " (keep it mode 600)" : ""))
            }
        }
    }

    private func checkMode() throws {
        guard secret else { return }
        var info = stat()
        guard stat(path, &info) == 0 else { throw CurveKeyError(explain(errno)) }
        guard info.st_mode & 0o077 == 0 else {
            throw CurveKeyError("\(setting): \(path) is readable by its group or others (mode \(String(info.st_mode & 0o777, radix: 8))): "
                + "chmod 600 \(path)")
        }
    }

    /// Why `path` cannot be opened, and what to do about it.
    private func explain(_ code: Int32) -> String {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOENT:
            return "\(setting): \(path) does not exist (\(reason)): create it, or set \(setting) to the file's path"
        case EACCES, EPERM:
            var info = stat()
            let about = stat(path, &info) == 0 ? " (\(Self.describe(info)))" : ""
            let me = Self.userName(getuid()) ?? "uid \(getuid())"
            return "\(setting): \(path) cannot be read by \(me), the user this process runs as\(about): "
                + "chown \(me): \(path)" + (secret ? " and keep it mode 600" : "")
                + " (a key made as root for a service: `liandongd keys generate NAME --dir DIR --owner \(me)`)"
        default:
            return "\(setting): cannot read \(path): \(reason)"
        }
    }

    static func describe(_ info: stat) -> String {
        let owner = userName(info.st_uid) ?? "uid \(info.st_uid)"
        let group = getgrgid(info.st_gid).map { String(cString: $0.pointee.gr_name) } ?? "gid \(info.st_gid)"
        return "owner \(owner), group \(group), mode \(String(info.st_mode & 0o777, radix: 8))"
    }

    public static func userName(_ uid: uid_t) -> String? {
        getpwuid(uid).map { String(cString: $0.pointee.pw_name) }
    }
}
