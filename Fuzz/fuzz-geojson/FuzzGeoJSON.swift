import FuzzSupport
import LiandongStorage

/// libFuzzer target: the grids GeoJSON reader (FeatureCollection, properties, Polygon and
/// MultiPolygon coordinates checked for WGS-84 degrees in China) before anything reaches the
/// database. Never crashes: a bad file is an ImportError naming the features.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGeoJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let features = try Importer.parseGrids(text, path: "fuzz")
        precondition(Set(features.map(\.grid_code)).count == features.count, "a grid code accepted twice")
    } catch let error as ImportError {
        precondition(!error.problems.isEmpty, "an import error without a problem")
    } catch {
        fatalError("unexpected error \(error)")
    }
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzGeoJSON($0, $1) } }
}
