import Foundation
import Testing
import ZeroMQ

@Suite("ZeroMQ wrapper")
struct SocketTests {
    @Test("multipart messages pass through inproc PUB/SUB with topic filtering, once XPUB saw the subscription")
    func inprocPubSub() throws {
        let context = try ZMQContext()
        let pub = try ZMQSocket(context: context, type: .xpub)
        try pub.bind("inproc://pubsub")
        let sub = try ZMQSocket(context: context, type: .sub)
        try sub.subscribe("task.6209")
        try sub.setReceiveTimeout(milliseconds: 2000)
        try sub.connect("inproc://pubsub")
        #expect(try pub.waitForSubscribers(covering: ["task.620922100"], timeoutMilliseconds: 2000))
        try pub.send(strings: ["other.topic", "{}"])
        try pub.send([Array("task.620922100".utf8), Array("{\"k\":1}".utf8), []])
        let frames = try #require(try sub.receive())
        #expect(frames.count == 3)
        #expect(String(decoding: frames[0], as: UTF8.self) == "task.620922100")
        #expect(frames[2].isEmpty)
    }

    @Test("DEALER and ROUTER talk over TCP loopback; the ROUTER sees the peer identity frame")
    func tcpDealerRouter() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.setReceiveTimeout(milliseconds: 3000)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint()
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setReceiveTimeout(milliseconds: 3000)
        try dealer.connect(endpoint)
        try dealer.send(strings: ["alert", "{\"x\":1}"])
        let request = try #require(try router.receive())
        #expect(request.count == 3 && request[1] == Array("alert".utf8))
        try router.send([request[0], Array("{\"ok\":true}".utf8)])
        let reply = try #require(try dealer.receive())
        #expect(reply == [Array("{\"ok\":true}".utf8)])
    }

    @Test("receive returns nil when the timeout passes with nothing to read")
    func timeout() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        try pull.bind("inproc://nothing")
        try pull.setReceiveTimeout(milliseconds: 50)
        let started = Date()
        #expect(try pull.receive() == nil)
        #expect(Date().timeIntervalSince(started) >= 0.04)
    }

    @Test("binding a TCP port twice fails with EADDRINUSE carried in the error")
    func addressInUse() throws {
        let context = try ZMQContext()
        let a = try ZMQSocket(context: context, type: .pub)
        try a.bind("tcp://127.0.0.1:*")
        let b = try ZMQSocket(context: context, type: .pub)
        #expect { try b.bind(try a.lastEndpoint()) } throws: { error in
            guard let e = error as? ZMQError else { return false }
            return e.isAddressInUse && e.description.contains("bind tcp://127.0.0.1:")
        }
    }

    @Test("a malformed endpoint is an error with zmq_errno, not a crash")
    func badEndpoint() throws {
        let socket = try ZMQSocket(context: try ZMQContext(), type: .sub)
        #expect(throws: ZMQError.self) { try socket.connect("nonsense://x") }
    }

    @Test("a socket keeps its context alive after the caller drops the context")
    func socketOwnsContext() throws {
        var pair: (ZMQSocket, ZMQSocket)? = nil
        do {
            let context = try ZMQContext()
            let push = try ZMQSocket(context: context, type: .push)
            try push.bind("inproc://alive")
            let pull = try ZMQSocket(context: context, type: .pull)
            try pull.connect("inproc://alive")
            pair = (push, pull)
        }
        let (push, pull) = try #require(pair)
        try pull.setReceiveTimeout(milliseconds: 1000)
        try push.send(strings: ["still here"])
        #expect(try pull.receive() == [Array("still here".utf8)])
    }

    @Test("the library version is 4.x")
    func version() { #expect(ZMQContext.version.hasPrefix("4.")) }
}

@Suite("ROUTER envelopes")
struct RouterEnvelopeTests {
    @Test("a DEALER's message keeps its identity; a REQ's its identity and delimiter; the body is what follows")
    func split() {
        let id: [UInt8] = [0, 1, 2]
        let dealer = RouterEnvelope.split([id, Array("alert".utf8), Array("{}".utf8)])
        #expect(dealer.envelope == [id] && dealer.body == [Array("alert".utf8), Array("{}".utf8)])
        let req = RouterEnvelope.split([id, [], Array("alert".utf8), Array("{}".utf8)])
        #expect(req.envelope == [id, []] && req.body == [Array("alert".utf8), Array("{}".utf8)])
        // One body frame after the identity is a DEALER's, even when empty.
        let short = RouterEnvelope.split([id, []])
        #expect(short.envelope == [id] && short.body == [[]])
        #expect(RouterEnvelope.split([]).envelope.isEmpty)
    }
}

@Suite("CURVE keys")
struct CurveKeyTests {
    @Test("a key pair is two 40-character Z85 keys, the public one derived from the secret")
    func keypair() throws {
        #expect(ZMQCurve.isAvailable)
        let (publicKey, secretKey) = try ZMQCurve.keypair()
        #expect(publicKey.utf8.count == 40 && secretKey.utf8.count == 40 && publicKey != secretKey)
        #expect(try ZMQCurve.publicKey(of: secretKey) == publicKey)
        #expect(throws: ZMQError.self) { try ZMQCurve.publicKey(of: "short") }
    }
}
