/// The release of this build: `liandongd --version`, the liandong_build_info metric.
public enum LiandongVersion {
    public static let current = "0.5.0"
}
