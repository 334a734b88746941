import Foundation
import LiandongClient
import LiandongCore
import ZeroMQ

/// A dispatcher's client on the updates ROUTER: sends task_update messages, waits for answers.
final class Dispatcher {
    let socket: ZMQSocket
    private var counter = 0

    init(_ daemon: DaemonProcess, type: SocketType = .dealer, curve: CurveClientKeys? = nil) throws {
        socket = try ZMQSocket(context: daemon.context, type: type)
        try curve?.apply(to: socket)
        try socket.setReceiveTimeout(milliseconds: 10_000)
        try socket.setSendTimeout(milliseconds: 10_000)
        try socket.setLinger(milliseconds: 0)
        try socket.connect(daemon.updates)
    }

    /// Sends one update and returns the parsed answer.
    @discardableResult
    func send(_ task: String, _ action: String, id: String? = nil, actor: String = "dispatcher-1", note: String? = nil)
        throws -> [String: Any]
    {
        counter += 1
        var body: [String: Any] = [
            "schema": "liandong.task_update.v1", "update_id": id ?? "u-\(UUID().uuidString.prefix(8))-\(counter)",
            "task_id": task, "action": action, "actor": actor, "at": Timestamp.formatCST(Date().timeIntervalSince1970),
        ]
        if let note { body["note"] = note }
        return try raw(Wire.json(body))
    }

    func raw(_ body: String) throws -> [String: Any] {
        try socket.send([Array(body.utf8)])
        guard let reply = try socket.receive() else { throw TestFailure("no answer from the updates socket") }
        return try JSONSerialization.jsonObject(with: Data(reply.last!)) as! [String: Any]
    }
}
