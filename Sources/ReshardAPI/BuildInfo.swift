/// What this build of Reshard is: the CLI's `--version` and the `reshard_build_info` metric
/// read it from here so that the two never disagree.
public enum BuildInfo {
    /// Bumped with every release; the API's wire format is versioned separately by its paths (`/v1`).
    public static let version = "0.20.0"

    /// The Swift compiler this binary was built with, as far as the compiler says.
    public static var swiftVersion: String {
        #if compiler(>=6.3)
            "6.3"
        #elseif compiler(>=6.2)
            "6.2"
        #elseif compiler(>=6.1)
            "6.1"
        #else
            "6.0"
        #endif
    }
}
