import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeImport
import LinprobeStore

/// `linprobe import-features <pipeline> [overrides]` or `linprobe import-features --features PATH …`.
struct ImportFeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StageKind.importFeatures.name,
        abstract: "Write features made elsewhere (VISSL, NumPy, torch) into a feature store the other stages read.",
        discussion: """
            With a pipeline: imports LINPROBE.IMPORT.TRAIN.FEATURES and TEST.FEATURES (with their LABELS when the \
            features are a bare array), the layers of the pool-op map (every layer without one), as LINPROBE.STORAGE_DTYPE; \
            'linprobe run' does this instead of extracting. Without one: imports --features (and --labels) as \
            --split. Features may be: a folder of VISSL's extract_features files \
            (rank<R>_chunk<C>_<split>_<layer>_{features,targets,inds}.npy, merged by index as VISSL's loader does, \
            padded duplicates dropped); a folder written by export-features; an .npz (keys features or \
            features_<layer>, targets or labels, optional indices, image_paths); an .npy with a labels .npy; a \
            torch.save file holding a tensor (with labels) or a dict with the .npz keys, read without running any \
            code from it. Labels are [N] class indices or [N, C] in VOC's encoding (1, 0, -1). Writes \
            <workdir>/features/<fp>/<split>.h5, <fp> derived from the files' content, and prints its path; an \
            import of the same content is reused. Rows stream: memory does not grow with their number.
            """)

    @Argument(
        help:
            "A pipeline file, the name of one under pipelines/, or VISSL's config=PATH (omit with --features)."
    )
    var pipeline: String?

    @Argument(
        help: "Overlays +GROUP=NAME and overrides config.A.B=value, as for every pipeline command.")
    var overrides: [String] = []

    @Option(
        help:
            "VISSL's configs folder (the one holding config/) for config=PATH and +config/… (default: $LINPROBE_VISSL_CONFIGS)."
    )
    var configs: String?

    @Option(help: "Folder holding manifest.json and every artifact.")
    var workdir: String = "runs"

    @Option(help: "Features to import without a pipeline: a folder, .npy, .npz or torch.save file.")
    var features: String?

    @Option(help: "Labels of a bare features array (.npy or torch.save file).")
    var labels: String?

    @Option(help: "The split the features are (VISSL's file names say train or test).")
    var split: String = "train"

    @Option(
        name: .customLong("layer"),
        help: "A layer to import (repeatable; default every layer); names a bare array (default heads).")
    var layers: [String] = []

    @Flag(help: "Import again even when a store of the same content exists.")
    var force = false

    func validate() throws {
        if (pipeline == nil) == (features == nil) {
            throw ValidationError("give a pipeline (its LINPROBE.IMPORT.* keys) or --features, not both")
        }
        if features != nil, !overrides.isEmpty || configs != nil {
            throw ValidationError(
                "overlays, overrides and --configs need a pipeline; with --features use --labels, --split and --layer")
        }
        if !["train", "test"].contains(split) { throw ValidationError("--split must be train or test, got \(split)") }
    }

    func run() throws {
        try reportingErrors {
            let layout = WorkdirLayout(workdir)
            let plans: [ImportSplitPlan]
            var name: String? = nil
            if let pipeline {
                let config = try PipelineConfig.load(pipeline: pipeline, overrides: overrides, configs: configs)
                for note in config.notes { Console.note(note) }
                if let note = config.ignoredKeysNote { Console.note(note) }
                name = config.name
                plans = try ImportPlanner.plan(config: config, layout: layout)
                if plans.isEmpty {
                    throw LinprobeError.config(
                        "\(config.name): LINPROBE.IMPORT.TRAIN.FEATURES and TEST.FEATURES are empty; nothing to import")
                }
            } else {
                let source = try ImportSource.open(
                    features: features ?? "", labels: labels, split: split, layers: layers,
                    singleLayer: layers.count == 1 ? layers[0] : "heads")
                plans = [try ImportSplitPlan(split: split, source: source, layout: layout)]
            }
            for outcome in try Self.execute(plans, layout: layout, pipeline: name, force: force) {
                Console.result(outcome.storePath)
            }
        }
    }

    /// Runs (or reuses) one import stage per split under the manifest.
    static func execute(
        _ plans: [ImportSplitPlan], layout: WorkdirLayout, pipeline: String?, force: Bool
    ) throws -> [ImportOutcome] {
        try plans.map { plan in
            try executeStage(ImportStage(split: plan, layout: layout, pipeline: pipeline), layout: layout, force: force)
            {
                "import-features: unchanged, reused \($0.storePath) (\($0.rows) rows; same content, fingerprint \(plan.fingerprint))"
            }
        }
    }
}

/// `linprobe export-features <store.h5> --format npy|npz --out PATH [--layer NAME …]`.
struct ExportFeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-features",
        abstract: "Write a feature store out as NumPy files for other tools.",
        discussion: """
            npy: a folder with features_<layer>.npy (float32 [N, D], or [N, C, H, W] for a spatial tap), \
            targets.npy, indices.npy, image_paths.npy and class_names.npy. npz: the same arrays as the keys of \
            one uncompressed np.savez archive. Rows stream through a fixed buffer. import-features reads both \
            back into a store with identical features and labels.
            """)

    @Argument(help: "A complete feature store (.h5).")
    var store: String

    @Option(help: "npy (a folder of .npy files) or npz (one archive).")
    var format: String

    @Option(help: "The folder (npy) or file (npz) to write.")
    var out: String

    @Option(name: .customLong("layer"), help: "A layer to export (repeatable; default every layer).")
    var layers: [String] = []

    func validate() throws {
        guard FeatureExport.Format(rawValue: format) != nil else {
            throw ValidationError("--format must be npy or npz, got \(format)")
        }
    }

    func run() throws {
        try reportingErrors {
            let reader = try FeatureStoreReader(path: store)
            let written = try FeatureExport.export(
                reader, format: FeatureExport.Format(rawValue: format) ?? .npy, to: out, layers: layers,
                progress: ProgressReporter(stage: "export-features"))
            for path in written { Console.result(path) }
        }
    }
}
