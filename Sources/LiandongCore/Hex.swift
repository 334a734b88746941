/// Lower-case hexadecimal, two digits a byte: digests (MD5 for SIP Digest, SHA-256 for API keys)
/// and raw dead-letter bytes are written this way.
public enum Hex {
    public static func lowercase(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// 0-9, a-f, A-F.
    public static func isDigit(_ c: UInt8) -> Bool {
        (48...57).contains(c) || (97...102).contains(c) || (65...70).contains(c)
    }
}
