#if canImport(Glibc)
import Glibc
#endif

/// Bodies from cameras and platforms in China come declared GB2312, GBK, GB18030 or UTF-8 (and
/// are sometimes declared one and sent in another). Converted with glibc's iconv: GB2312 and
/// GBK are read as GB18030, which contains both.
public enum TextEncoding {
    /// The encoding named in an XML declaration (`<?xml version="1.0" encoding="GB2312"?>`),
    /// lower-cased; nil without a declaration or without an encoding in it.
    public static func declaredXMLEncoding(_ bytes: [UInt8]) -> String? {
        var start = 0
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        let head = Array(bytes[start..<min(bytes.count, start + 256)])
        guard head.starts(with: Array("<?xml".utf8)), let end = head.firstRange(of: Array("?>".utf8))?.lowerBound else { return nil }
        let declaration = String(decoding: head[..<end], as: UTF8.self)
        guard let key = declaration.range(of: "encoding") else { return nil }
        let rest = declaration[key.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        let value = rest.dropFirst().prefix { $0 != quote }
        return value.lowercased()
    }

    /// An XML body as UTF-8: in its declared encoding; undeclared, as UTF-8 when it is valid
    /// UTF-8, else as GB18030 (vendors that omit the declaration send GB2312).
    public static func xmlToUTF8(_ bytes: [UInt8]) throws(Rejection) -> [UInt8] {
        let declared = declaredXMLEncoding(bytes)
        switch declared {
        case nil:
            if String(validating: bytes, as: UTF8.self) != nil { return bytes }
            guard let converted = convert(bytes, from: "GB18030") else {
                throw Rejection(.invalidEncoding, "the body declares no encoding and is neither UTF-8 nor GB18030")
            }
            return converted
        case "utf-8"?, "utf8"?:
            guard String(validating: bytes, as: UTF8.self) != nil else {
                // Declared UTF-8, sent in GB2312: a common vendor mistake, read as sent.
                guard let converted = convert(bytes, from: "GB18030") else {
                    throw Rejection(.invalidEncoding, "the body is declared UTF-8 but is not valid UTF-8 (nor GB18030)")
                }
                return converted
            }
            return bytes
        case "gb2312"?, "gbk"?, "gb18030"?, "cp936"?, "x-gbk"?, "euc-cn"?:
            guard let converted = convert(bytes, from: "GB18030") else {
                throw Rejection(.invalidEncoding, "the body is not valid \(declared!.uppercased())")
            }
            return converted
        case let other?:
            throw Rejection(.invalidEncoding, "encoding \"\(other.prefix(32))\" is not accepted (UTF-8, GB2312, GBK, GB18030)")
        }
    }

    /// `bytes` converted from `encoding` to UTF-8, nil when any byte sequence is invalid in it.
    public static func convert(_ bytes: [UInt8], from encoding: String) -> [UInt8]? {
        if bytes.isEmpty { return [] }
        let cd = iconv_open("UTF-8", encoding)
        guard let cd, cd != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(cd) }
        var input = bytes
        // GB18030 takes 1, 2 or 4 bytes per character, UTF-8 at most 4 (3 for what takes 2): twice is enough.
        var output = [UInt8](repeating: 0, count: bytes.count * 2 + 4)
        let produced: Int? = input.withUnsafeMutableBytes { inRaw in
            output.withUnsafeMutableBytes { outRaw in
                var inPointer: UnsafeMutablePointer<CChar>? = inRaw.baseAddress!.assumingMemoryBound(to: CChar.self)
                var outPointer: UnsafeMutablePointer<CChar>? = outRaw.baseAddress!.assumingMemoryBound(to: CChar.self)
                var inLeft = inRaw.count, outLeft = outRaw.count
                let result = iconv(cd, &inPointer, &inLeft, &outPointer, &outLeft)
                guard result != -1, inLeft == 0 else { return nil }
                return outRaw.count - outLeft
            }
        }
        guard let produced else { return nil }
        return Array(output[..<produced])
    }
}
