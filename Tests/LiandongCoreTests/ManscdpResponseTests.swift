import Foundation
import Testing
@testable import LiandongCore

@Suite("MANSCDP responses (Catalog, DeviceInfo)")
struct ManscdpResponseTests {
    static let nvr = "62092200001180000001"

    /// A Catalog MESSAGE of `nvr` with channels `range` (channel k: 6209220000131000000k-ish ids).
    static func catalog(sn: String = "17", sum: Int, _ range: Range<Int>, encoding: String = "UTF-8",
                        extra: (Int) -> String = { _ in "" }) -> String {
        let items = range.map { k in
            """
            <Item><DeviceID>\(channel(k))</DeviceID><Name>通道\(k)</Name><Manufacturer>Hikvision</Manufacturer><Model>DS-2CD</Model>\
            <CivilCode>620922</CivilCode><Address>渊泉镇</Address><Parental>0</Parental><ParentID>\(nvr)</ParentID>\
            <Status>\(k % 2 == 0 ? "ON" : "OFF")</Status>\(extra(k))</Item>
            """
        }.joined()
        return "<?xml version=\"1.0\" encoding=\"\(encoding)\"?><Response><CmdType>Catalog</CmdType><SN>\(sn)</SN>"
            + "<DeviceID>\(nvr)</DeviceID><SumNum>\(sum)</SumNum><DeviceList Num=\"\(range.count)\">\(items)</DeviceList></Response>"
    }

    static func channel(_ k: Int) -> String { "6209220000131" + String(format: "%07d", k) }

    static func part(_ text: String) throws -> CatalogPart {
        guard case .catalog(let p) = try ManscdpResponse.decode(utf8: Array(text.utf8)) else { throw Rejection(.unknownSchema, "not a catalog") }
        return p
    }

    @Test("a Catalog in two MESSAGEs (SumNum 70): assembled once all 70 are in, in the order they came; repeats count once")
    func twoParts() throws {
        var a = CatalogAssembly(deviceID: Self.nvr, sn: "17", deadline: 100)
        #expect(!a.isComplete)
        let first = try Self.part(Self.catalog(sum: 70, 0..<40))
        #expect(first.items.count == 40 && first.sumNum == 70 && first.deviceID == Self.nvr)
        #expect(a.add(first) && !a.isComplete)
        #expect(a.add(try Self.part(Self.catalog(sum: 70, 35..<40))) && !a.isComplete, "repeats count once")
        #expect(!a.add(try Self.part(Self.catalog(sn: "18", sum: 70, 40..<70))), "another query's answer")
        #expect(a.add(try Self.part(Self.catalog(sum: 70, 40..<70))) && a.isComplete)
        #expect(a.channels.map(\.channelID) == (0..<70).map(Self.channel))
        let c = a.channels[4]
        #expect(c.name == "通道4" && c.manufacturer == "Hikvision" && c.model == "DS-2CD" && c.civilCode == "620922"
            && c.address == "渊泉镇" && c.parentID == Self.nvr && c.online == true && c.position == nil)
        #expect(a.channels[5].online == false)
    }

    @Test("out of time with some channels in: done, what came is what is known")
    func deadline() throws {
        var a = CatalogAssembly(deviceID: Self.nvr, sn: "17", deadline: 100)
        #expect(a.add(try Self.part(Self.catalog(sum: 70, 0..<40))))
        #expect(!a.isDone(now: 99) && a.isDone(now: 100) && a.channels.count == 40)
    }

    @Test("positions: given and not zero; ParentID paths name their last element; Status spellings; a GB2312 body")
    func fields() throws {
        let head: String = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>Catalog</CmdType><SN>3</SN>"
            + "<DeviceID>\(Self.nvr)</DeviceID><SumNum>3</SumNum><DeviceList Num=\"3\">"
        let first: String = "<Item><DeviceID>\(Self.channel(0))</DeviceID><ParentID>62092200002150000001/\(Self.nvr)</ParentID>"
            + "<Status>online</Status><Longitude>95.7812</Longitude><Latitude>40.5208</Latitude><Name>"
        let name: [UInt8] = [0xc7, 0xf8, 0xd3, 0xf2, 0xc8, 0xeb, 0xc7, 0xd6]  // 区域入侵 in GB2312
        let second: String = "</Name></Item><Item><DeviceID>\(Self.channel(1))</DeviceID><Status>OFF</Status>"
            + "<Longitude>0</Longitude><Latitude>0.0</Latitude></Item>"
        let third: String = "<Item><DeviceID>\(Self.channel(2))</DeviceID><Longitude>200</Longitude><Latitude>40</Latitude></Item>"
            + "</DeviceList></Response>"
        var body: [UInt8] = Array((head + first).utf8)
        body += name
        body += Array((second + third).utf8)
        let p = try Self.part(String(decoding: try TextEncoding.xmlToUTF8(body), as: UTF8.self))
        #expect(p.items.map { $0.channelID } == (0..<3).map(Self.channel))
        #expect(p.items[0].position == LonLat(lon: 95.7812, lat: 40.5208))
        #expect(p.items[0].parentID == Self.nvr && p.items[0].online == true && p.items[0].name == "区域入侵")
        #expect(p.items[1].position == nil && p.items[1].online == false && p.items[1].parentID == nil)
        #expect(p.items[2].position == nil && p.items[2].online == nil)
    }

    @Test("DeviceInfo: manufacturer, model, firmware, channel count")
    func deviceInfo() throws {
        let text = "<?xml version=\"1.0\"?><Response><CmdType>DeviceInfo</CmdType><SN>9</SN><DeviceID>\(Self.nvr)</DeviceID>"
            + "<DeviceName>NVR-1</DeviceName><Result>OK</Result><Manufacturer>Dahua</Manufacturer><Model>NVR4216</Model>"
            + "<Firmware>V4.001</Firmware><Channel>64</Channel></Response>"
        #expect(try ManscdpResponse.decode(utf8: Array(text.utf8)) == .deviceInfo(ManscdpDeviceInfo(
            sn: "9", deviceID: Self.nvr, name: "NVR-1", result: "OK", manufacturer: "Dahua", model: "NVR4216", firmware: "V4.001",
            channels: 64)))
    }

    @Test("refused with a reason: no SumNum, a SumNum beyond 10,000, an item without a 20-digit id, not a Response")
    func refusals() {
        func reason(_ text: String) -> RejectReason? {
            do { _ = try ManscdpResponse.decode(utf8: Array(text.utf8)); return nil } catch { return error.reason }
        }
        let head = "<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>\(Self.nvr)</DeviceID>"
        #expect(reason(head + "</Response>") == .missingField)
        #expect(reason(head + "<SumNum>10001</SumNum></Response>") == .invalidField)
        #expect(reason(head + "<SumNum>1</SumNum><DeviceList Num=\"1\"><Item><DeviceID>123</DeviceID></Item></DeviceList></Response>")
            == .invalidDeviceID)
        #expect(reason("<Notify><CmdType>Catalog</CmdType></Notify>") == .malformedXML)
        #expect(reason("<Response><CmdType>DeviceControl</CmdType><SN>2</SN><DeviceID>\(Self.nvr)</DeviceID><Result>ERROR</Result></Response>")
            == nil)
    }
}
