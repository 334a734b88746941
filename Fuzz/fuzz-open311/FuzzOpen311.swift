import FuzzSupport
import Foundation
import LiandongCore

/// libFuzzer target: what liandong-open311 reads from residents' apps and writes back. The first
/// byte picks the path, the rest is a form (a POST body or a query string):
/// - a filing: what the form check accepts, liandongd's decoder accepts too, as a report with no
///   worker whose stored payload carries no contact;
/// - a rating: what the form check accepts is a citizen_feedback.v1 liandongd records;
/// - the answers: every form value written into a JSON and an XML answer reads back the same.
/// Never crashes; every refusal names its reason.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpen311(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let form: [String: String]
    do {
        form = try Open311.form(bytes)
    } catch {
        precondition(error.code == 400 && !error.message.isEmpty, "a form refusal without a reason")
        return 0
    }
    let now = 1_796_169_600.0
    switch data[0] % 3 {
    case 0:
        do {
            let filing = try Open311.filing(form, services: Open311.Service.defaults, app: "wechat", requestID: "620922-0123456789abcdef",
                                            now: now, gatewayID: "liandong-open311")
            switch MessageDecoder().decode(frames: [Array("citizen".utf8), filing.body], now: now) {
            case .success(let event):
                precondition(event.source == .report && event.workerID == nil && event.citizen != nil, "not a resident's report: \(event)")
                guard case .object(let stored)? = try? JSONValue.parse(Array(event.body.utf8)) else { fatalError("the payload is not an object") }
                precondition(stored["contact"] == nil, "the contact reached the stored payload")
                precondition(event.position.map(\.isValid) == true, "placed nowhere")
            case .failure(let rejection):
                fatalError("liandongd refuses what the form check accepted: \(rejection): \(String(decoding: filing.body, as: UTF8.self))")
            }
        } catch {
            precondition(error.code == 400 && !error.message.isEmpty, "a filing refusal without a reason")
        }
    case 1:
        do {
            let body = try Open311.feedback(form, requestID: "620922-1", app: "wechat", feedbackID: "620922-2", now: now)
            guard case .success(.record(let record)) = MessageDecoder().decodeMessage(frames: [Array("feedback".utf8), body], now: now),
                  let rating = record as? CitizenFeedback
            else { fatalError("liandongd refuses a rating the form check accepted: \(String(decoding: body, as: UTF8.self))") }
            precondition((1...5).contains(rating.rating), "a rating out of range")
        } catch {
            precondition(error.code == 400 && !error.message.isEmpty, "a rating refusal without a reason")
        }
    default:
        let fields = form.sorted { $0.key < $1.key }.prefix(8)
        let items: [[(String, Open311.Value)]] = [fields.map { ("f\($0.key.unicodeScalars.count)", .text($0.value)) }]
        let json = Open311.render(items, root: "service_requests", item: "request", as: .json)
        // (Foundation's parser: answers are read by apps' JSON parsers; liandongd's own refuses a NUL.)
        guard let list = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]], let o = list.first else {
            fatalError("a JSON answer does not parse: \(json)")
        }
        for (key, value) in fields where o["f\(key.unicodeScalars.count)"] as? String != value && fields.filter({ $0.key.unicodeScalars.count == key.unicodeScalars.count }).count == 1 {
            fatalError("JSON changed \(value.debugDescription) into \(String(describing: o["f\(key.unicodeScalars.count)"]))")
        }
        let xml = Open311.render(items, root: "service_requests", item: "request", as: .xml)
        guard let root = try? XMLReader.parse(Array(xml.utf8)) else { fatalError("an XML answer does not parse: \(xml)") }
        precondition(root.name == "service_requests" && root.children.count == 1, "XML lost its shape")
        // What XML 1.0 can carry (characters below 0x20 other than tab and newline are dropped; a CR is a newline).
        for (key, value) in fields where !value.unicodeScalars.contains("\r") && fields.filter({ $0.key.unicodeScalars.count == key.unicodeScalars.count }).count == 1 {
            let kept = String(String.UnicodeScalarView(value.unicodeScalars.filter { $0.value >= 0x20 || $0 == "\t" || $0 == "\n" }))
            let read = root.children[0].child("f\(key.unicodeScalars.count)")?.text ?? ""
            precondition(read == kept, "XML changed \(kept.debugDescription) into \(read.debugDescription)")
        }
    }
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzOpen311($0, $1) } }
}
