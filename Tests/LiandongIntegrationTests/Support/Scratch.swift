import Foundation

/// Where the suite puts its files, sockets and private clusters: the temporary directory, which
/// tools/test makes one directory per run (TMPDIR) and removes afterwards, so a run leaves nothing
/// in /tmp - a test that kills a daemon leaves its ipc sockets, some leave keys, and Chromium its
/// profiles. Run by hand without TMPDIR, /tmp.
enum Scratch {
    static let directory: String = {
        let dir = NSTemporaryDirectory()
        return dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    }()
}
