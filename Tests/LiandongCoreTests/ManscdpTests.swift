import Foundation
import LiandongCore
import Testing

/// MANSCDP bodies as vendors' cameras and NVRs send them, and hostile ones.
@Suite("GB/T 28181 MANSCDP")
struct ManscdpTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// An alarm as a Hikvision-style NVR sends it: declared GB2312, Chinese description in
    /// GB2312 bytes, local time without zone, CRLF line ends.
    static func gb2312Alarm(description: [UInt8] = hex("c7f8d3f2c8ebc7d6")) -> [UInt8] {
        Array("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>17430</SN>\r\n".utf8)
            + Array("<DeviceID>62092200011320000017</DeviceID>\r\n<AlarmPriority>2</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n".utf8)
            + Array("<AlarmTime>2026-11-29T10:15:32</AlarmTime>\r\n<AlarmDescription>".utf8) + description
            + Array("</AlarmDescription>\r\n<Longitude>95.781234</Longitude>\r\n<Latitude>40.521987</Latitude>\r\n".utf8)
            + Array("<Info>\r\n<AlarmType>6</AlarmType>\r\n<AlarmTypeParam><EventType>1</EventType></AlarmTypeParam>\r\n</Info>\r\n</Notify>\r\n".utf8)
    }

    @Test("a GB2312 alarm: every field, the description converted, local time read as China Standard Time")
    func gb2312() throws {
        let n = try MANSCDP.decode(Self.gb2312Alarm())
        #expect(n.deviceID == "62092200011320000017" && n.sn == "17430")
        guard case .alarm(let a) = n.command else { Issue.record("not an alarm"); return }
        #expect(a.priority == 2 && a.method == 5 && a.alarmType == 6 && a.eventType == 1)
        #expect(a.description == "区域入侵")
        #expect(a.time == Timestamp.parse("2026-11-29T10:15:32+08:00"))
        #expect(a.position == LonLat(lon: 95.781234, lat: 40.521987))
        #expect(a.alertID(deviceID: n.deviceID, sn: n.sn) == "gb28181:62092200011320000017:17430:2026-11-29T10:15:32")
    }

    @Test("vendor variations: UTF-8 with zone and milliseconds, concatenated methods, no Info, zero coordinates, GBK and GB18030 declared, no declaration at all")
    func variations() throws {
        let utf8 = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Notify><CmdType> Alarm </CmdType><SN>1</SN><DeviceID>62092200011320000017</DeviceID><AlarmPriority>4</AlarmPriority>
            <AlarmMethod>25</AlarmMethod><AlarmTime>2026-11-29T10:15:32.250+08:00</AlarmTime><AlarmDescription>视频丢失</AlarmDescription>
            <Longitude>0</Longitude><Latitude>0</Latitude></Notify>
            """
        let n = try MANSCDP.decode(Array(utf8.utf8))
        guard case .alarm(let a) = n.command else { Issue.record("not an alarm"); return }
        #expect(a.method == 25 && a.alarmType == nil && a.position == nil && a.description == "视频丢失")
        #expect(a.time == Timestamp.parse("2026-11-29T10:15:32+08:00")! + 0.25)
        for declared in ["GBK", "gb18030", "GB2312"] {
            let bytes = Self.gb2312Alarm().replacing(Array("GB2312".utf8), with: Array(declared.utf8), maxReplacements: 1)
            guard case .alarm(let x) = try MANSCDP.decode(bytes).command else { Issue.record("\(declared)"); continue }
            #expect(x.description == "区域入侵", "\(declared)")
        }
        // No declaration, GB2312 bytes: read as GB18030. Declared UTF-8 but sent in GB2312: read as sent.
        let bare = Array(Self.gb2312Alarm().drop { $0 != 0x0A }.dropFirst())
        guard case .alarm(let b) = try MANSCDP.decode(bare).command else { Issue.record("bare"); return }
        #expect(b.description == "区域入侵")
        let lying = Self.gb2312Alarm().replacing(Array("GB2312".utf8), with: Array("UTF-8".utf8), maxReplacements: 1)
        guard case .alarm(let c) = try MANSCDP.decode(lying).command else { Issue.record("lying"); return }
        #expect(c.description == "区域入侵")
    }

    @Test("a keepalive names its device and status")
    func keepalive() throws {
        let body = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Keepalive</CmdType><SN>43</SN>"
            + "<DeviceID>62092200001180000001</DeviceID><Status>OK</Status></Notify>"
        let n = try MANSCDP.decode(Array(body.utf8))
        #expect(n.command == .keepalive(status: "OK") && n.deviceID == "62092200001180000001" && n.sn == "43")
    }

    @Test("AlarmTime as vendors write it", arguments: [
        ("2026-11-29T10:15:32", "2026-11-29T10:15:32+08:00"), ("2026-11-29 10:15:32", "2026-11-29T10:15:32+08:00"),
        ("2026-11-29T9:5:3", "2026-11-29T09:05:03+08:00"), ("2026-11-29T10:15:32Z", "2026-11-29T10:15:32Z"),
        ("2026-11-29T10:15:32+0800", "2026-11-29T10:15:32+08:00"), ("2026-11-29T02:15:32-05:30", "2026-11-29T02:15:32-05:30"),
    ])
    func times(sent: String, meaning: String) {
        #expect(MANSCDP.parseTime(sent) == Timestamp.parse(meaning), "\(sent)")
    }

    @Test("times that are not times", arguments: ["", "yesterday", "2026-13-01T00:00:00", "2026-02-30T00:00:00", "2026-11-29T24:00:00",
                                                  "2026-11-29", "2026-11-29T10:15:xx", "2026-11-29T10:15:32+99:00"])
    func badTimes(text: String) {
        #expect(MANSCDP.parseTime(text) == nil, "\(text)")
    }

    @Test("hostile and broken bodies are refused with a reason, never a crash", arguments: [
        ("<?xml version=\"1.0\"?><!DOCTYPE lol [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><Notify>&b;</Notify>", "malformed_xml", "DOCTYPE"),
        (String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100), "malformed_xml", "deeper than 32"),
        ("<Notify><CmdType>Alarm</CmdType>", "malformed_xml", "not closed"),
        ("<Notify><SN>1</Notify>", "malformed_xml", "</Notify> closes <SN>"),
        ("<Notify>&xxe;</Notify>", "malformed_xml", "entity"),
        ("<Response><CmdType>Alarm</CmdType></Response>", "malformed_xml", "is not <Notify>"),
        ("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Notify/>", "invalid_encoding", "iso-8859-1"),
        ("<Notify><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>62092200011320000017</DeviceID></Notify>", "unknown_schema", "Catalog"),
        ("<Notify><CmdType>Alarm</CmdType><DeviceID>62092200011320000017</DeviceID></Notify>", "missing_field", "SN"),
        ("<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>123</DeviceID></Notify>", "invalid_device_id", "123"),
        ("<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>62092200011320000017</DeviceID><AlarmPriority>9</AlarmPriority></Notify>",
         "invalid_field", "AlarmPriority"),
        ("<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>62092200011320000017</DeviceID><AlarmPriority>1</AlarmPriority>"
            + "<AlarmMethod>5</AlarmMethod><AlarmTime>soon</AlarmTime></Notify>", "invalid_time", "soon"),
        ("", "malformed_xml", "no root"),
        ("<Notify></Notify><Notify></Notify>", "malformed_xml", "after the root"),
    ] as [(String, String, String)])
    func refused(body: String, reason: String, detail: String) {
        #expect { try MANSCDP.decode(Array(body.utf8)) } throws: { error in
            guard let r = error as? Rejection else { return false }
            return r.reason.rawValue == reason && r.detail.contains(detail)
        }
    }

    @Test("declared GB2312 with bytes that are not: refused as invalid_encoding")
    func badBytes() {
        let body = Self.gb2312Alarm(description: [0xFF, 0xFF, 0x80])
        #expect { try MANSCDP.decode(body) } throws: { ($0 as? Rejection)?.reason == .invalidEncoding }
    }

    @Test("XML: attributes, CDATA, comments, entities and character references")
    func xml() throws {
        let e = try XMLReader.parse(Array("<?xml version='1.0'?><!-- c --><a x=\"1\" y='&lt;2&gt;'><b>t&amp;u&#x4E2D;&#25991;</b><![CDATA[<raw>]]><c/></a>".utf8))
        #expect(e.name == "a" && e.attributes == ["x": "1", "y": "<2>"] && e.children.map(\.name) == ["b", "c"])
        #expect(e.value("b") == "t&u中文" && e.text == "<raw>")
        #expect(throws: XMLError.self) { try XMLReader.parse(Array("<a x=\"1\" x=\"2\"/>".utf8)) }
        #expect(throws: XMLError.self) { try XMLReader.parse(Array("<a>&#0;</a>".utf8)) }
        let many = "<a>" + String(repeating: "<b/>", count: 5000) + "</a>"
        #expect(throws: XMLError.self) { try XMLReader.parse(Array(many.utf8)) }
    }
}
