import Foundation
@testable import LiandongServices
import Testing
import ZeroMQ

/// `liandongd keys generate NAME --dir DIR`: a CURVE key pair as two files, the secret one private.
@Suite("CURVE key files")
struct KeysTests {
    @Test("generate writes a private secret key and its public key, never overwrites, and a readable secret is refused")
    func generate() throws {
        let dir = "/tmp/ld-keys-\(UUID().uuidString.prefix(8))/keys"
        let r = try liandongd(["keys", "generate", "disp-620922100", "--dir", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let secretPath = dir + "/disp-620922100.key", publicPath = dir + "/disp-620922100.pub"
        let mode = try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let secret = try CurveKeyFiles.readSecret(secretPath)
        let published = try String(contentsOfFile: publicPath, encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(secret.utf8.count == 40 && published.utf8.count == 40)
        #expect(try ZMQCurve.publicKey(of: secret) == published)
        #expect(r.stdout.contains("public key: \(published)"))

        let again = try liandongd(["keys", "generate", "disp-620922100", "--dir", dir])
        #expect(again.status == 1 && again.stderr.contains("refusing to overwrite"))
        #expect(try CurveKeyFiles.readSecret(secretPath) == secret)

        chmod(secretPath, 0o640)
        #expect(throws: ConfigError.self) { try CurveKeyFiles.readSecret(secretPath) }
        let bad = try liandongd(["keys", "generate", "../escape", "--dir", dir])
        #expect(bad.status == 1 && bad.stderr.contains("letters, digits"))
    }
}
