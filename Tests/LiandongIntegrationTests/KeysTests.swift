import Foundation
import LiandongClient
@testable import LiandongServices
import LiandongCore
import Testing
import ZeroMQ

/// `liandongd keys generate NAME --dir DIR`: a CURVE key pair as two files, the secret one private.
@Suite("CURVE key files")
struct KeysTests {
    @Test("generate writes a private secret key and its public key, never overwrites, and a readable secret is refused")
    func generate() throws {
        let dir = "\(Scratch.directory)/ld-keys-\(UUID().uuidString.prefix(8))/keys"
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
        #expect(throws: CurveKeyError.self) { try CurveKeyFiles.readSecret(secretPath) }
        let bad = try liandongd(["keys", "generate", "../escape", "--dir", dir])
        #expect(bad.status == 1 && bad.stderr.contains("letters, digits"))
    }

    @Test("a peers file is read with every mistake named by entry; a reload reports what changed and closes connections by role")
    func peersFile() throws {
        let a = try ZMQCurve.keypair().publicKey, b = try ZMQCurve.keypair().publicKey, c = try ZMQCurve.keypair().publicKey
        let peers = try PeersFile.parse("""
            peers:
              - {name: gw-1, public_key: "\(a)", role: gateway, scope: "620922100"}
              - {name: ops, public_key: "\(b)", role: observer}
            """, path: "p.yaml")
        #expect(peers == [Peer(name: "gw-1", publicKey: a, role: .gateway, scope: "620922100"),
                          Peer(name: "ops", publicKey: b, role: .observer, scope: "")])
        func refusal(_ entries: String) -> String {
            do { _ = try PeersFile.parse("peers:\n" + entries, path: "p.yaml") } catch { return "\(error)" }
            return "accepted"
        }
        #expect(refusal("  - {name: x, public_key: \"\(a)\", role: admin}\n").contains("entry 1 (x): role must be one of gateway, dispatcher, observer"))
        #expect(refusal("  - {name: x, public_key: \"\(a)\", role: gateway, scope: \"6209x\"}\n").contains("scope must be a division-code prefix"))
        #expect(refusal("  - {name: x, public_key: \"\(a)\", role: gateway}\n  - {name: y, public_key: \"\(a)\", role: gateway}\n")
            .contains("entry 2 (y): the same public_key as x"))
        #expect(refusal("  - {name: x, public_key: \"\(a)\", role: gateway}\n  - {name: x, public_key: \"\(b)\", role: gateway}\n")
            .contains("entry 2 (x): the name is used twice"))
        #expect(refusal("  - {name: x, key: \"\(a)\", role: gateway}\n").contains("unknown field \"key\""))
        #expect(refusal("  - {name: \"a b\", public_key: \"\(a)\", role: gateway}\n").contains("name must be"))

        let registry = PeerRegistry(peers: peers)
        let gateways = registry.revision(of: [.gateway]), readers = registry.revision(of: [.dispatcher, .observer])
        let change = registry.install([Peer(name: "gw-1", publicKey: a, role: .gateway, scope: "620922100"),
                                       Peer(name: "disp", publicKey: c, role: .dispatcher, scope: "620922101")])
        #expect(change == PeerRegistry.Change(added: ["disp"], removed: ["ops"], changed: []))
        #expect(registry.revision(of: [.gateway]) == gateways, "gateways unchanged: their connections stay")
        #expect(registry.revision(of: [.dispatcher, .observer]) == readers + 1)
        #expect(registry.peer(key: b) == nil && registry.peer(named: "disp")?.scope == "620922101")
        registry.install([Peer(name: "gw-1", publicKey: a, role: .gateway, scope: "620922101"),
                          Peer(name: "disp", publicKey: c, role: .dispatcher, scope: "620922101")])
        #expect(registry.revision(of: [.gateway]) == gateways + 1, "a scope changed: the gateway handshakes again")
    }
}
