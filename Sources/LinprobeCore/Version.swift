/// The tool's version, recorded in every artifact's provenance.
public enum LinprobeVersion {
    public static let string = "0.1.0"
}
