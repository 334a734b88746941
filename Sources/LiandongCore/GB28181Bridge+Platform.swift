/// The bridge as a platform, speaking first: the Response MESSAGE to an alarm, and the Catalog
/// query - it asks each registered device for its Catalog (when it registers, then every
/// `catalogInterval`), collects the answer's MESSAGEs (`CatalogAssembly`) and forwards one
/// liandong.device_catalog.v1 to liandongd when every announced channel came, or what came when
/// `catalogTimeout` runs out.
extension GB28181Bridge {
    /// The platform's answer to an alarm (GB/T 28181-2016 9.4): a MESSAGE carrying
    /// <Response><CmdType>Alarm</CmdType>...<Result>OK</Result></Response>, to the device.
    mutating func alarmResponse(sn: String, channel: String, device: String, peer: SIPPeer, now: Double) -> BridgeAction {
        let body = """
            <?xml version="1.0" encoding="GB2312"?>\r
            <Response>\r
            <CmdType>Alarm</CmdType>\r
            <SN>\(sn)</SN>\r
            <DeviceID>\(channel)</DeviceID>\r
            <Result>OK</Result>\r
            </Response>\r

            """
        count("alarm_responses")
        return platformMessage(to: device, peer: peer, body: body, purpose: .alarmResponse, now: now)
    }

    /// A MESSAGE from the platform to a registered device (an alarm's Response, a Query, a
    /// Control), resent over UDP until the device answers it.
    mutating func platformMessage(to device: String, peer: SIPPeer? = nil, body: String, purpose: Purpose, now: Double) -> BridgeAction {
        platformRequest("MESSAGE", to: device, peer: peer, body: body, purpose: purpose, now: now)
    }

    /// A request from the platform to a registered device (MESSAGE, SUBSCRIBE), resent over UDP
    /// until the device answers it (32 s); `dialog` continues a dialog (a subscription's refresh).
    mutating func platformRequest(_ method: String, to device: String, peer: SIPPeer? = nil, body: String, purpose: Purpose, now: Double,
                                  dialog: (callID: String, fromTag: String, toTag: String?, cseq: UInt32)? = nil,
                                  extra: [(name: String, value: String)] = []) -> BridgeAction
    {
        let r = registrations[device]
        let peer = peer ?? r?.peer ?? SIPPeer(transport: .udp, host: settings.realm, port: 5060)
        let host = r?.localHost ?? settings.realm, port = r?.localPort ?? 5060
        let branch = "z9hG4bK" + Self.randomToken()
        let cseq: UInt32
        if let dialog { cseq = dialog.cseq } else {
            cseq = nextCSeq
            nextCSeq &+= 1
        }
        let message = SIPMessage(
            start: .request(method: method, uri: "sip:\(device)@\(peer.host):\(peer.port)"),
            headers: [
                ("Via", "SIP/2.0/\(peer.transport.rawValue.uppercased()) \(host):\(port);rport;branch=\(branch)"),
                ("From", "<sip:\(settings.serverID)@\(settings.realm)>;tag=\(dialog?.fromTag ?? Self.randomToken())"),
                ("To", "<sip:\(device)@\(settings.realm)>" + (dialog?.toTag.map { ";tag=\($0)" } ?? "")),
                ("Call-ID", dialog?.callID ?? "\(Self.randomToken())@\(host)"),
                ("CSeq", "\(cseq) \(method)"),
                ("Max-Forwards", "70"),
                ("User-Agent", "liandong-gb28181"),
            ] + extra + [("Content-Type", "Application/MANSCDP+xml")],
            body: Array(body.utf8))
        outgoing[branch] = Outgoing(message: message, peer: peer, device: device, purpose: purpose, nextAt: now + 0.5, interval: 1,
                                    giveUpAt: now + 32)
        return .send(message, to: peer)
    }


    /// MESSAGE Query/Catalog to a registered device (one query per device at a time).
    mutating func askCatalog(_ device: String, now: Double) -> [BridgeAction] {
        guard registrations[device] != nil, refused[device]?.contains(Purpose.catalog.name) != true else { return [] }
        let sn = takeSN()
        catalogs[device] = CatalogAssembly(deviceID: device, sn: sn, deadline: now + settings.catalogTimeout)
        catalogAskedAt[device] = now
        count("catalog_queries")
        return [platformMessage(to: device, body: Self.manscdp("Query", "Catalog", sn: sn, device: device), purpose: .catalog, now: now)]
    }

    /// A Catalog Response MESSAGE of `device` (already answered 200): added to its query's answer.
    mutating func catalogResponse(_ utf8: [UInt8], device: String, now: Double) -> [BridgeAction] {
        guard case .catalog(let part)? = try? ManscdpResponse.decode(utf8: utf8) else {
            count("catalog_unreadable")
            return []
        }
        guard part.deviceID == device, var assembly = catalogs[device], assembly.add(part) else {
            count("catalog_unasked")
            return []
        }
        count("catalog_parts")
        catalogs[device] = assembly
        return assembly.isComplete ? finishCatalog(device, now: now) : []
    }

    /// The query of `device` is over: what came goes to liandongd (nothing when nothing came).
    mutating func finishCatalog(_ device: String, now: Double) -> [BridgeAction] {
        guard let assembly = catalogs.removeValue(forKey: device) else { return [] }
        guard assembly.parts > 0 else {
            count("catalog_unanswered")
            return []
        }
        let catalog = DeviceCatalog(assembly, at: now)
        count(catalog.complete ? "catalogs_complete" : "catalogs_partial")
        noteChannels(device, catalog.channels, replacing: catalog.complete)
        return [.forward(topic: DeviceCatalog.topic, body: catalog.json(), id: catalog.id)]
    }

    /// Timers: a query out of time ends with what came; a registered device never asked (a restart)
    /// or due again (`catalogInterval`) is asked.
    mutating func catalogTick(now: Double) -> [BridgeAction] {
        var actions: [BridgeAction] = []
        for (device, assembly) in catalogs.sorted(by: { $0.key < $1.key }) where now >= assembly.deadline {
            actions += finishCatalog(device, now: now)
        }
        for (device, r) in registrations.sorted(by: { $0.key < $1.key }) where r.expiresAt > now && catalogs[device] == nil {
            if let asked = catalogAskedAt[device], settings.catalogInterval <= 0 || now - asked < settings.catalogInterval { continue }
            actions += askCatalog(device, now: now)
        }
        catalogAskedAt = catalogAskedAt.filter { registrations[$0.key] != nil }
        return actions
    }
}
