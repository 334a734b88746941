import CZeroMQ

/// CURVE keys (libzmq with libsodium): Z85 text, 40 characters each.
public enum ZMQCurve {
    /// True when this libzmq can do CURVE.
    public static var isAvailable: Bool { zmq_has("curve") == 1 }

    /// A new key pair.
    public static func keypair() throws -> (publicKey: String, secretKey: String) {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        try zmqCall("zmq_curve_keypair") { zmq_curve_keypair(&pub, &sec) }
        return (z85(pub), z85(sec))
    }

    /// The public key of a secret key (both Z85).
    public static func publicKey(of secretKey: String) throws -> String {
        var pub = [CChar](repeating: 0, count: 41)
        guard secretKey.utf8.count == 40 else { throw ZMQError(errno: EINVAL, operation: "zmq_curve_public (a key is 40 Z85 characters)") }
        try zmqCall("zmq_curve_public") { secretKey.withCString { zmq_curve_public(&pub, $0) } }
        return z85(pub)
    }

    /// A binary key (32 bytes, as ZAP requests carry it) in Z85; nil for any other length.
    public static func z85(binary key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard key.withUnsafeBufferPointer({ zmq_z85_encode(&text, $0.baseAddress, 32) }) != nil else { return nil }
        return z85(text)
    }

    /// Whether `key` is 40 characters of valid Z85 (any 32 bytes is a usable public key).
    public static func isZ85Key(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var binary = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&binary, key) != nil
    }

    /// The 40 characters of a NUL-terminated Z85 buffer.
    private static func z85(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
