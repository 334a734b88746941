import Foundation
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// CURVE key files (security.secret_key_file, the peers' public keys): NAME.key holds the secret
/// key and NAME.pub the public key, each as one line of Z85 (40 characters). A secret key file
/// must be readable by its owner only.
public enum CurveKeyFiles {
    /// Writes DIR/NAME.key (mode 0600) and DIR/NAME.pub with a new key pair; refuses to overwrite.
    /// Returns the public key.
    public static func generate(name: String, directory: String) throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw ConfigError("key name \"\(name)\": use letters, digits, '.', '_' and '-' only")
        }
        guard ZMQCurve.isAvailable else {
            throw ConfigError("this libzmq was built without CURVE (libsodium): install Debian's libzmq5")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o750])
        let (publicKey, secretKey) = try ZMQCurve.keypair()
        let secretPath = directory + "/" + name + ".key", publicPath = directory + "/" + name + ".pub"
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw ConfigError("\(path) exists; refusing to overwrite a key (remove it first if you mean to replace it)")
        }
        try write(secretKey + "\n", to: secretPath, mode: 0o600)
        try write(publicKey + "\n", to: publicPath, mode: 0o644)
        return publicKey
    }

    /// Reads a secret key file, refusing one that its group or others may read.
    public static func readSecret(_ path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ConfigError("cannot read the secret key file \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & 0o077 == 0 else {
            throw ConfigError("the secret key file \(path) is readable by its group or others (mode \(String(info.st_mode & 0o777, radix: 8))): "
                + "chmod 600 \(path)")
        }
        let key = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard key.utf8.count == 40, (try? ZMQCurve.publicKey(of: key)) != nil else {
            throw ConfigError("\(path) does not hold a Z85 CURVE secret key (40 characters)")
        }
        return key
    }

    private static func write(_ text: String, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw ConfigError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, mode)  // whatever the umask took away or not, exactly this
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
