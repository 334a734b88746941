/// A small, strict XML reader for the bodies cameras send (GB/T 28181 MANSCDP): elements,
/// attributes, text, CDATA, comments, the XML declaration and processing instructions. No DTD
/// (a DOCTYPE is refused, so no entity can expand), only the five predefined entities and
/// character references, at most `maxDepth` levels and `maxElements` elements. Input is UTF-8
/// (`TextEncoding` converts the rest first). Never crashes on hostile input: it throws.
public struct XMLElement: Sendable, Equatable {
    public var name: String
    public var attributes: [String: String]
    public var children: [XMLElement]
    /// Character data directly inside it, CDATA included, as written (not trimmed).
    public var text: String

    public init(name: String, attributes: [String: String] = [:], children: [XMLElement] = [], text: String = "") {
        self.name = name
        self.attributes = attributes
        self.children = children
        self.text = text
    }

    /// The first child named `name`.
    public func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    /// The trimmed text of the child at `path` ("Info/AlarmType"), nil when absent or empty.
    public func value(_ path: String) -> String? {
        var node = self
        for part in path.split(separator: "/") {
            guard let next = node.child(String(part)) else { return nil }
            node = next
        }
        let trimmed = node.text.trimmingXMLSpace()
        return trimmed.isEmpty ? nil : trimmed
    }
}

public struct XMLError: Error, Equatable, CustomStringConvertible {
    public let message: String
    /// Byte offset where reading stopped.
    public let offset: Int
    public var description: String { "\(message) (at byte \(offset))" }
}

public enum XMLReader {
    public static let maxDepth = 32
    public static let maxElements = 4096

    /// The document's root element.
    public static func parse(_ bytes: [UInt8]) throws(XMLError) -> XMLElement {
        var p = Parser(bytes)
        return try p.document()
    }

    struct Parser {
        let b: [UInt8]
        var i = 0
        var elements = 0

        init(_ bytes: [UInt8]) {
            b = bytes
            // A UTF-8 byte order mark is allowed.
            if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        }

        func fail(_ message: String) -> XMLError { XMLError(message: message, offset: i) }

        var atEnd: Bool { i >= b.count }

        func peek(_ s: String) -> Bool {
            let u = Array(s.utf8)
            return i + u.count <= b.count && Array(b[i..<i + u.count]) == u
        }

        mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        }

        /// Skips to just after `end`.
        mutating func skip(past end: String, what: String) throws(XMLError) {
            let u = Array(end.utf8)
            while i + u.count <= b.count {
                if b[i] == u[0] && Array(b[i..<i + u.count]) == u {
                    i += u.count
                    return
                }
                i += 1
            }
            throw fail("unterminated \(what)")
        }

        /// Declaration, processing instructions and comments before or after the root.
        mutating func misc() throws(XMLError) {
            while true {
                skipSpace()
                if peek("<?") {
                    try skip(past: "?>", what: "processing instruction")
                } else if peek("<!--") {
                    try skip(past: "-->", what: "comment")
                } else if peek("<!DOCTYPE") || peek("<!doctype") {
                    throw fail("a DOCTYPE is not accepted (no DTD, no entity definitions)")
                } else {
                    return
                }
            }
        }

        mutating func document() throws(XMLError) -> XMLElement {
            try misc()
            guard peek("<") else { throw fail(atEnd ? "no root element" : "text before the root element") }
            let root = try element(depth: 1)
            try misc()
            guard atEnd else { throw fail("content after the root element") }
            return root
        }

        static func isNameStart(_ c: UInt8) -> Bool {
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x3A || c >= 0x80
        }

        static func isNameChar(_ c: UInt8) -> Bool { isNameStart(c) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2E }

        mutating func name() throws(XMLError) -> String {
            let start = i
            guard i < b.count, Self.isNameStart(b[i]) else { throw fail("expected a name") }
            while i < b.count, Self.isNameChar(b[i]) { i += 1 }
            guard let s = String(validating: b[start..<i], as: UTF8.self) else { throw fail("a name is not valid UTF-8") }
            return s
        }

        mutating func element(depth: Int) throws(XMLError) -> XMLElement {
            guard depth <= XMLReader.maxDepth else { throw fail("elements nested deeper than \(XMLReader.maxDepth)") }
            elements += 1
            guard elements <= XMLReader.maxElements else { throw fail("more than \(XMLReader.maxElements) elements") }
            i += 1  // <
            var node = XMLElement(name: try name())
            while true {
                skipSpace()
                guard i < b.count else { throw fail("unterminated start tag <\(node.name)>") }
                if b[i] == 0x2F {  // />
                    guard peek("/>") else { throw fail("expected /> in <\(node.name)>") }
                    i += 2
                    return node
                }
                if b[i] == 0x3E {  // >
                    i += 1
                    break
                }
                let attribute = try name()
                skipSpace()
                guard i < b.count, b[i] == 0x3D else { throw fail("expected = after attribute \(attribute)") }
                i += 1
                skipSpace()
                guard i < b.count, b[i] == 0x22 || b[i] == 0x27 else { throw fail("attribute \(attribute) needs a quoted value") }
                let quote = b[i]
                i += 1
                let start = i
                while i < b.count, b[i] != quote {
                    if b[i] == 0x3C { throw fail("< inside the value of attribute \(attribute)") }
                    i += 1
                }
                guard i < b.count else { throw fail("unterminated value of attribute \(attribute)") }
                let value = try decodeText(start..<i)
                i += 1
                guard node.attributes[attribute] == nil else { throw fail("attribute \(attribute) given twice") }
                node.attributes[attribute] = value
            }
            // Content.
            while true {
                guard i < b.count else { throw fail("element <\(node.name)> is not closed") }
                if peek("</") {
                    i += 2
                    let closing = try name()
                    guard closing == node.name else { throw fail("</\(closing)> closes <\(node.name)>") }
                    skipSpace()
                    guard i < b.count, b[i] == 0x3E else { throw fail("expected > after </\(closing)") }
                    i += 1
                    return node
                } else if peek("<!--") {
                    try skip(past: "-->", what: "comment")
                } else if peek("<![CDATA[") {
                    i += 9
                    let start = i
                    try skip(past: "]]>", what: "CDATA section")
                    guard let s = String(validating: b[start..<(i - 3)], as: UTF8.self) else { throw fail("CDATA is not valid UTF-8") }
                    node.text += s
                } else if peek("<?") {
                    try skip(past: "?>", what: "processing instruction")
                } else if peek("<!") {
                    throw fail("declarations are not accepted inside elements")
                } else if b[i] == 0x3C {
                    node.children.append(try element(depth: depth + 1))
                } else {
                    let start = i
                    while i < b.count, b[i] != 0x3C { i += 1 }
                    node.text += try decodeText(start..<i)
                }
            }
        }

        /// Text with the predefined entities and character references replaced.
        func decodeText(_ range: Range<Int>) throws(XMLError) -> String {
            guard let raw = String(validating: b[range], as: UTF8.self) else {
                throw XMLError(message: "text is not valid UTF-8", offset: range.lowerBound)
            }
            guard raw.contains("&") else { return raw }
            // By Unicode scalar, not Character: a combining mark after ";" would otherwise join it.
            var out = String.UnicodeScalarView()
            var rest = Substring(raw).unicodeScalars
            while let amp = rest.firstIndex(of: "&") {
                out.append(contentsOf: rest[..<amp])
                guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 10 else {
                    throw XMLError(message: "an & that starts no entity", offset: range.lowerBound)
                }
                let entity = String(String.UnicodeScalarView(rest[rest.index(after: amp)..<semi]))
                switch entity {
                case "lt": out.append("<")
                case "gt": out.append(">")
                case "amp": out.append("&")
                case "quot": out.append("\"")
                case "apos": out.append("'")
                default:
                    var code: UInt32?
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") { code = UInt32(entity.dropFirst(2), radix: 16) }
                    else if entity.hasPrefix("#") { code = UInt32(entity.dropFirst(), radix: 10) }
                    guard let code, code != 0, let scalar = Unicode.Scalar(code) else {
                        throw XMLError(message: "entity &\(entity.prefix(10)); is not one of lt, gt, amp, quot, apos or a character reference",
                                       offset: range.lowerBound)
                    }
                    out.append(scalar)
                }
                rest = rest[rest.index(after: semi)...]
            }
            out.append(contentsOf: rest)
            return String(out)
        }
    }
}

extension String {
    /// Without leading and trailing XML white space (space, tab, CR, LF).
    func trimmingXMLSpace() -> String {
        let space: Set<Character> = [" ", "\t", "\n", "\r", "\r\n"]
        guard let first = firstIndex(where: { !space.contains($0) }) else { return "" }
        let last = lastIndex(where: { !space.contains($0) })!
        return String(self[first...last])
    }
}
