import Foundation
import LiandongStorage

#if canImport(Glibc)
/// glibc's mallopt(3) and malloc_trim(3); malloc.h is not part of the Glibc module.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// glibc gives every thread that allocates its own 64 MiB arena; the daemon's dedicated threads
/// would multiply resident memory for no gain. Call before starting threads.
public func limitMallocArenas() {
    #if canImport(Glibc)
    _ = glibcMallopt(-8 /* M_ARENA_MAX */, 2)
    #endif
}

/// Returns freed heap memory to the operating system (glibc keeps it otherwise).
func releaseFreeMemory() {
    #if canImport(Glibc)
    _ = glibcMallocTrim(0)
    #endif
}
