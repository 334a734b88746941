/// Masks secrets in text that is about to be printed or logged: whatever an error, a library or a
/// config file carries, no password reaches stderr or journald. Applied where text leaves a
/// process (the log handler, the CLI's error line, the SIP bridge's log), so a message built
/// anywhere is covered; the places that know a value is secret print "(set)" in the first place.
///
/// Masked: a conninfo `password=VALUE` (quoted or not), the password of a URI
/// (`postgresql://user:PASSWORD@host`), and the value after a `password`, `passwd`, `secret` or
/// `api_key` key in YAML or `KEY=VALUE` form (`password: x`, `gb28181.password = x`,
/// `LIANDONG_GB28181_PASSWORD=x`). Key file *paths* are not secrets and stay.
public enum Secrets {
    public static let mask = "***"

    /// `text` with every secret it holds replaced by `***`.
    public static func redact(_ text: String) -> String {
        // Fast path: nothing that could introduce a secret.
        let lower = text.lowercased()
        guard lower.contains("pass") || lower.contains("secret") || lower.contains("api_key") || lower.contains("://") else {
            return text
        }
        var scalars = Array(text.unicodeScalars)
        maskURIPasswords(&scalars)
        maskKeyValues(&scalars)
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars)
        return String(out)
    }

    /// Key names whose value is secret (compared lowercased, as the key's last word).
    static func isSecretKey(_ key: String) -> Bool {
        let k = key.lowercased()
        return k.hasSuffix("password") || k.hasSuffix("passwd") || k.hasSuffix("secret") || k.hasSuffix("api_key")
            || k.hasSuffix("apikey") || k == "pwd"
    }

    /// `scheme://user:PASSWORD@` -> `scheme://user:***@`.
    private static func maskURIPasswords(_ s: inout [Unicode.Scalar]) {
        var i = 0
        while i + 2 < s.count {
            guard s[i] == ":", s[i + 1] == "/", s[i + 2] == "/" else { i += 1; continue }
            let authorityStart = i + 3
            var end = authorityStart
            while end < s.count, !" \t\n\r/?#\"'".unicodeScalars.contains(s[end]) { end += 1 }
            // The last '@' in the authority ends the userinfo; a ':' before it starts the password.
            if let at = s[authorityStart..<end].lastIndex(of: "@"),
               let colon = s[authorityStart..<at].firstIndex(of: ":"), colon + 1 < at {
                s.replaceSubrange((colon + 1)..<at, with: mask.unicodeScalars)
                i = colon + 1 + mask.unicodeScalars.count
            } else {
                i = end
            }
        }
    }

    /// `password=VALUE`, `password = 'VALUE'`, `password: VALUE`, `"password": "VALUE"` -> `***`.
    private static func maskKeyValues(_ s: inout [Unicode.Scalar]) {
        func isKeyScalar(_ c: Unicode.Scalar) -> Bool {
            (c.properties.isAlphabetic && c.isASCII) || ("0"..."9").contains(c) || c == "_" || c == "." || c == "-"
        }
        var i = 0
        while i < s.count {
            guard isKeyScalar(s[i]), i == 0 || !isKeyScalar(s[i - 1]) else { i += 1; continue }
            var keyEnd = i
            while keyEnd < s.count, isKeyScalar(s[keyEnd]) { keyEnd += 1 }
            let key = String(String.UnicodeScalarView(s[i..<keyEnd]))
            var j = keyEnd
            if j < s.count, s[j] == "\"" || s[j] == "'" { j += 1 }  // "password": ...
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            guard isSecretKey(key.split(separator: ".").last.map(String.init) ?? key),
                  j < s.count, s[j] == "=" || s[j] == ":" else { i = keyEnd; continue }
            j += 1
            while j < s.count, s[j] == " " || s[j] == "\t" { j += 1 }
            guard j < s.count, s[j] != "\n", s[j] != "\r" else { i = j; continue }
            let valueStart: Int, valueEnd: Int
            if s[j] == "'" || s[j] == "\"" {
                let quote = s[j]
                var k = j + 1
                while k < s.count, s[k] != quote, s[k] != "\n" {
                    if s[k] == "\\" { k += 1 }
                    k += 1
                }
                valueStart = j + 1
                valueEnd = min(k, s.count)
            } else {
                var k = j
                while k < s.count, !" \t\n\r,;&}".unicodeScalars.contains(s[k]) { k += 1 }
                valueStart = j
                valueEnd = k
            }
            guard valueStart < valueEnd, !["(set)", "(none)", mask].contains(String(String.UnicodeScalarView(s[valueStart..<valueEnd]))) else {
                i = max(valueEnd, keyEnd); continue
            }
            s.replaceSubrange(valueStart..<valueEnd, with: mask.unicodeScalars)
            i = valueStart + mask.unicodeScalars.count
        }
    }
}
