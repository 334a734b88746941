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

    /// The 40 characters of a NUL-terminated Z85 buffer.
    private static func z85(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
