import Foundation
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A key file that cannot be used, phrased for the operator who has to fix it.
public struct CurveKeyError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// CURVE key files (security.secret_key_file, the peers' public keys): NAME.key holds the secret
/// key and NAME.pub the public key, each as one line of Z85 (40 characters). A secret key file
/// must be readable by its owner only.
public enum CurveKeyFiles {
    /// Writes DIR/NAME.key (mode 0600) and DIR/NAME.pub with a new key pair; refuses to overwrite.
    /// Returns the public key.
    /// With `owner` (the service's account) both files belong to it, and so does DIR when this
    /// call creates it: a key made by root for a unit with User=liandong is readable by the unit.
    public static func generate(name: String, directory: String, owner: String? = nil) throws -> String {
        var account: (uid: uid_t, gid: gid_t)?
        if let owner {
            guard let entry = getpwnam(owner) else { throw CurveKeyError("--owner \(owner): no such user (create the service account first)") }
            account = (entry.pointee.pw_uid, entry.pointee.pw_gid)
        }
        let directoryExisted = FileManager.default.fileExists(atPath: directory)
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw CurveKeyError("key name \"\(name)\": use letters, digits, '.', '_' and '-' only")
        }
        guard ZMQCurve.isAvailable else {
            throw CurveKeyError("this libzmq was built without CURVE (libsodium): install Debian's libzmq5")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o750])
        let (publicKey, secretKey) = try ZMQCurve.keypair()
        let secretPath = directory + "/" + name + ".key", publicPath = directory + "/" + name + ".pub"
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw CurveKeyError("\(path) exists; refusing to overwrite a key (remove it first if you mean to replace it)")
        }
        try write(secretKey + "\n", to: secretPath, mode: 0o600)
        try write(publicKey + "\n", to: publicPath, mode: 0o644)
        if let account {
            for path in [secretPath, publicPath] + (directoryExisted ? [] : [directory]) where chown(path, account.uid, account.gid) != 0 {
                throw CurveKeyError("cannot give \(path) to \(owner ?? ""): \(String(cString: strerror(errno))) (run as root, or chown it yourself)")
            }
        }
        return publicKey
    }

    /// Reads a secret key file, refusing one that its group or others may read. `setting` names
    /// what pointed at it (security.secret_key_file, --curve-key) in every error.
    public static func readSecret(_ path: String, setting: String = "the secret key file") throws -> String {
        let key = try ConfiguredFile(setting: setting, path: path, secret: true).read()
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard key.utf8.count == 40, (try? ZMQCurve.publicKey(of: key)) != nil else {
            throw CurveKeyError("\(setting): \(path) does not hold a Z85 CURVE secret key (40 characters)")
        }
        return key
    }

    private static func write(_ text: String, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw CurveKeyError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, mode)  // whatever the umask took away or not, exactly this
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw CurveKeyError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// A client's CURVE keys (gateway, dispatcher, tools): the daemon's public key and the client's
/// own key pair. Give them to IngestClient / FeedClient or `apply` them to a socket before it connects.
public struct CurveClientKeys: Sendable {
    public let serverKey: String
    public let publicKey: String
    public let secretKey: String

    public init(serverKey: String, secretKey: String) throws {
        guard ZMQCurve.isZ85Key(serverKey) else { throw CurveKeyError("the server key is not a Z85 CURVE public key (40 characters)") }
        self.serverKey = serverKey
        self.secretKey = secretKey
        publicKey = try ZMQCurve.publicKey(of: secretKey)
    }

    /// `serverKey`: the daemon's public key, as its NAME.pub file or the 40 characters themselves;
    /// `secretKeyFile`: this client's NAME.key (mode 0600).
    public static func load(serverKey: String, secretKeyFile: String) throws -> CurveClientKeys {
        var server = serverKey
        if !ZMQCurve.isZ85Key(serverKey) {
            guard let text = try? String(contentsOfFile: serverKey, encoding: .utf8) else {
                throw CurveKeyError("--curve-server-key \(serverKey): neither a readable file nor a 40-character Z85 key")
            }
            server = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard ZMQCurve.isZ85Key(server) else { throw CurveKeyError("\(serverKey) does not hold a Z85 CURVE public key (40 characters)") }
        }
        return try CurveClientKeys(serverKey: server, secretKey: try CurveKeyFiles.readSecret(secretKeyFile, setting: "--curve-key"))
    }

    /// From the tools' --curve-server-key and --curve-key: both or neither (nil: no CURVE).
    public static func options(serverKey: String?, secretKeyFile: String?) throws -> CurveClientKeys? {
        switch (serverKey, secretKeyFile) {
        case (nil, nil): return nil
        case (let server?, let secret?): return try load(serverKey: server, secretKeyFile: secret)
        default: throw CurveKeyError("give both --curve-server-key (the daemon's NAME.pub) and --curve-key (this client's NAME.key), or neither")
        }
    }

    /// Makes `socket` a CURVE client of the daemon (before it connects or binds).
    public func apply(to socket: ZMQSocket) throws {
        try socket.setCurveClient(serverKey: serverKey, publicKey: publicKey, secretKey: secretKey)
    }
}
