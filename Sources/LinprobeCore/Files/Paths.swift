import Foundation

/// The one path helper: joining, resolving against a base folder and standardising.
public enum Paths {
    /// `path` when absolute, otherwise `path` resolved against `base` (itself resolved against
    /// the current folder when relative). No symlinks are resolved.
    /// A leading `~/` is the home folder.
    public static func absolute(
        _ path: String, relativeTo base: String = FileManager.default.currentDirectoryPath
    ) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] {
            return join(home, String(path.dropFirst(2)))
        }
        let folder = base.hasPrefix("/") ? base : join(FileManager.default.currentDirectoryPath, base)
        return join(folder, path)
    }

    /// The absolute, standardised form (`.` and `..` removed, no symlinks resolved).
    public static func standardized(
        _ path: String, relativeTo base: String = FileManager.default.currentDirectoryPath
    ) -> String {
        URL(fileURLWithPath: absolute(path, relativeTo: base)).standardizedFileURL.path
    }

    /// `a/b/c` from its parts, skipping empty ones.
    public static func join(_ first: String, _ rest: String...) -> String {
        rest.reduce(first) { partial, next in
            next.isEmpty ? partial : (partial as NSString).appendingPathComponent(next)
        }
    }

    /// The folder holding `path` (`.` for a bare file name).
    public static func parent(_ path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// The last component of `path`.
    public static func lastComponent(_ path: String) -> String { (path as NSString).lastPathComponent }

    /// Creates `path` and its parents; the error names the folder.
    public static func ensureDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw LinprobeError(.io, "\(path): cannot create the folder: \(oneLine(error))")
        }
    }
}
