/// The bridge's small pieces: transaction keys, To tags, tokens, and what SIP values need.
extension GB28181Bridge {
    /// RFC 3261 17.2.3: the top Via's branch and the method (CANCEL aside); a pre-3261 device
    /// without a magic-cookie branch is keyed by Call-ID, CSeq and From tag.
    func transactionKey(_ m: SIPMessage) -> TransactionKey {
        let method = m.method ?? ""
        if let via = m.via, let branch = via.branch, branch.hasPrefix("z9hG4bK") {
            return TransactionKey(branch: "\(branch)|\(via.host):\(via.port ?? 5060)", method: method)
        }
        let cseq = m.cseq.map { String($0.number) } ?? ""
        return TransactionKey(branch: "\(m.header("Call-ID") ?? "")|\(cseq)|\(m.from?.tag ?? "")", method: method)
    }

    /// Our To tag for a transaction: stable, so every answer to its retransmissions carries the same.
    func tag(_ key: TransactionKey) -> String {
        String(MD5.hex("\(settings.serverID):\(key.branch)").prefix(10))
    }

    static func randomToken() -> String { String(UInt64.random(in: 0...UInt64.max), radix: 36) }
}

extension String {
    /// A Contact value with its expires parameter set to `expires`.
    func replacingExpires(_ expires: Int) -> String {
        var parts = split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        // Parameters after the closing '>' (or after the URI when there is no '<').
        let firstParam = contains(">") ? (parts.firstIndex { $0.contains(">") } ?? 0) + 1 : 1
        if firstParam <= parts.count {
            parts = Array(parts[..<firstParam]) + parts[firstParam...].filter { !$0.lowercased().hasPrefix("expires=") }
        }
        return parts.joined(separator: ";") + ";expires=\(expires)"
    }
}

extension SIPMessage {
    /// The same start line and headers, no body (what a transaction needs to answer it).
    var withoutBody: SIPMessage { body.isEmpty ? self : SIPMessage(start: start, headers: headers, body: []) }
}
