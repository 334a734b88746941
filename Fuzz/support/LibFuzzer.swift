#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's own driver (the toolchain's libclang_rt.fuzzer, linked by -sanitize=fuzzer): SwiftPM
/// links an executable's entry point as `main`, so each target starts libFuzzer from there.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// Runs libFuzzer with the process's arguments (-max_total_time=, corpus directories, ...).
public func runLibFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}
