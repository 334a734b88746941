/// A minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF or LF. Returns rows with the
/// 1-based line number where each starts (for error messages).
public func parseCSV(_ text: String) -> [(line: Int, fields: [String])] {
    var rows: [(Int, [String])] = []
    var field = ""
    var fields: [String] = []
    var inQuotes = false
    var line = 1
    var rowStart = 1
    var chars = text.makeIterator()
    var pending: Character? = nil
    func next() -> Character? {
        if let p = pending {
            pending = nil
            return p
        }
        return chars.next()
    }
    while let c = next() {
        if inQuotes {
            if c == "\"" {
                if let n = next() {
                    if n == "\"" { field.append("\"") } else {
                        inQuotes = false
                        pending = n
                    }
                } else {
                    inQuotes = false
                }
            } else {
                if c == "\n" || c == "\r\n" { line += 1 }
                field.append(c)
            }
            continue
        }
        switch c {
        case "\"" where field.isEmpty: inQuotes = true
        case ",":
            fields.append(field)
            field = ""
        case "\n", "\r\n", "\r":
            fields.append(field)
            if !(fields.count == 1 && fields[0].isEmpty) { rows.append((rowStart, fields)) }
            fields = []
            field = ""
            line += 1
            rowStart = line
        default: field.append(c)
        }
    }
    if !field.isEmpty || !fields.isEmpty {
        fields.append(field)
        rows.append((rowStart, fields))
    }
    return rows.map { (line: $0.0, fields: $0.1) }
}
