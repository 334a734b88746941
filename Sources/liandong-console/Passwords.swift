import CCrypt
import Foundation

/// Salted slow password hashes with libxcrypt (yescrypt, `$y$`, its default cost): what
/// `user add` stores and what a login is checked against.
enum Passwords {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func hash(_ password: String) throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        // No random bytes given: libxcrypt takes them from the kernel (getrandom).
        guard crypt_gensalt_rn("$y$", 0, nil, 0, &setting, Int32(setting.count)) != nil else {
            throw Failure(description: "cannot make a salt: \(String(cString: strerror(errno)))")
        }
        let salt = String(decoding: setting.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let hashed = crypt(password, setting: salt), hashed.hasPrefix("$y$") else {
            throw Failure(description: "cannot hash the password with yescrypt")
        }
        return hashed
    }

    /// True when `password` hashes to `stored` (compared in constant time).
    static func verify(_ password: String, against stored: String) -> Bool {
        guard let hashed = crypt(password, setting: stored) else { return false }
        let a = Array(hashed.utf8), b = Array(stored.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// A hash no password matches in practice, checked for unknown users so that a login takes as
    /// long whether or not the name exists.
    static let decoy = (try? hash(UUID().uuidString)) ?? "$y$j9T$decoy"

    private static func crypt(_ password: String, setting: String) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer {
            memset(data, 0, MemoryLayout<crypt_data>.size)
            data.deallocate()
        }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let out = crypt_rn(password, setting, data, Int32(MemoryLayout<crypt_data>.size)) else { return nil }
        let text = String(cString: out)
        return text.hasPrefix("*") ? nil : text
    }
}
