/// The registry of every configuration key Linprobe reads. Defaults live here and nowhere else:
/// VISSL keys take VISSL's default (from defaults.yaml) unless `default:` is given; Linprobe's own
/// keys live under `LINPROBE.`. Adding a key is one line; then regenerate the schema with
/// `linprobe config --schema > schemas/pipeline.schema.json` (a test checks that they agree).
public enum LinprobeKeys {
    public static let all: [ConfigKey] = common + splitKeys("TRAIN") + splitKeys("TEST") + linprobe

    /// Keys that exist once for each data split (`DATA.TRAIN.*` and `DATA.TEST.*`).
    private static func splitKeys(_ split: String) -> [ConfigKey] {
        let p = "DATA.\(split)."
        return [
            .vissl(
                p + "DATA_SOURCES", .list(.string),
                "Where the \(split) images come from, one per dataset (disk_folder, disk_filelist, ...)."),
            .vissl(
                p + "DATA_PATHS", .list(.string),
                "Image folder or file list per dataset; empty = look the dataset name up in the dataset catalog."),
            .vissl(
                p + "LABEL_SOURCES", .list(.string),
                "Where the \(split) labels come from, one per dataset (disk_folder, disk_filelist, ...)."),
            .vissl(
                p + "LABEL_PATHS", .list(.string),
                "Label file per dataset (disk_filelist); empty = from the dataset catalog."),
            .vissl(p + "DATASET_NAMES", .list(.string), "Dataset catalog names of the \(split) datasets."),
            .vissl(
                p + "TRANSFORMS", .list(.mapping),
                "Preprocessing pipeline: torchvision transforms as {name: ..., args...} mappings, applied in order."),
            .vissl(
                p + "BATCHSIZE_PER_REPLICA", .integer, default: 32, min: 1,
                "Images per replica per step (VISSL's benchmarks: 32; global batch = this × NUM_PROC_PER_NODE × NUM_NODES)."
            ),
            .vissl(p + "DATA_LIMIT", .integer, min: -1, "Use only this many samples (-1 = all)."),
            .vissl(p + "DATA_LIMIT_SAMPLING.SEED", .integer, "Seed of the DATA_LIMIT subset sampling."),
            .vissl(
                p + "DATA_LIMIT_SAMPLING.IS_BALANCED", .bool,
                "DATA_LIMIT subset takes the same number of samples per class."),
            .vissl(
                p + "DATA_LIMIT_SAMPLING.SKIP_NUM_SAMPLES", .integer, min: 0,
                "Skip this many samples before taking the DATA_LIMIT subset."),
            .vissl(
                p + "DEFAULT_GRAY_IMG_SIZE", .integer, min: 1,
                "Side of the mean-colour image that replaces an unreadable image."),
            .vissl(p + "REMOVE_IMG_PATH_PREFIX", .string, "Prefix removed from every image path of a file list."),
            .vissl(p + "NEW_IMG_PATH_PREFIX", .string, "Prefix put in place of REMOVE_IMG_PATH_PREFIX."),
            .vissl(
                p + "LABEL_TYPE", .string, oneOf: ["standard", "sample_index", "zero"],
                "Labels from the label source (standard), the sample's index, or all zero."),
        ]
    }

    private static let common: [ConfigKey] = [
        .vissl(
            "DATA.NUM_DATALOADER_WORKERS", .integer, min: 0,
            "Parallel image-loading workers (VISSL: dataloader processes per GPU)."),

        .vissl("MODEL.INPUT_TYPE", .string, oneOf: ["rgb", "bgr", "lab"], "Colour layout the trunk expects."),
        .vissl(
            "MODEL.TRUNK.NAME", .string,
            "Trunk architecture (resnet, vision_transformer, beit, alexnet_bvlc, alexnet_colorization, alexnet_deepcluster, alexnet_jigsaw, alexnet_rotnet, resnet_sk)."
        ),
        .vissl("MODEL.TRUNK.RESNETS.DEPTH", .integer, oneOf: [18, 34, 50, 101, 152, 200], "ResNet depth."),
        .vissl(
            "MODEL.TRUNK.RESNETS.WIDTH_MULTIPLIER", .integer, min: 1,
            "ResNet width multiplier (SimCLR-style wide ResNets: 2, 4, 5)."),
        .vissl(
            "MODEL.TRUNK.RESNETS.NORM", .string, oneOf: ["BatchNorm", "LayerNorm", "GroupNorm"],
            "Normalisation layer of the trunk."),
        .vissl(
            "MODEL.TRUNK.RESNETS.GROUPS", .integer, min: 1,
            "Convolution groups of the bottleneck 3×3 (ResNeXt cardinality)."),
        .vissl(
            "MODEL.TRUNK.RESNETS.WIDTH_PER_GROUP", .integer, min: 1,
            "Channels per group of the bottleneck (64 = plain ResNet)."),
        .vissl(
            "MODEL.TRUNK.RESNETS.ZERO_INIT_RESIDUAL", .bool,
            "Zero-initialise the last BN of each residual branch (training only; no effect on loaded weights)."),
        .vissl("MODEL.TRUNK.RESNETS.LAYER4_STRIDE", .integer, oneOf: [1, 2], "Stride of the last ResNet stage."),
        .vissl("MODEL.TRUNK.RESNETS_SK.DEPTH", .integer, oneOf: [152], "SimCLRv2 ResNet (resnet_sk) depth."),
        .vissl("MODEL.TRUNK.RESNETS_SK.WIDTH_MULTIPLIER", .integer, min: 1, "SimCLRv2 ResNet width multiplier."),
        .vissl(
            "MODEL.TRUNK.RESNETS_SK.SK_RATIO", .number, min: 0,
            "Selective-kernel squeeze ratio (0.0625 = SimCLRv2 sk1; 0 = plain 7x7 stem and 3x3 convolutions)."),

        .vissl(
            "MODEL.TRUNK.VISION_TRANSFORMERS.IMAGE_SIZE", .integer, min: 1,
            "ViT: image side the position grid is built for."),
        .vissl("MODEL.TRUNK.VISION_TRANSFORMERS.PATCH_SIZE", .integer, min: 1, "ViT: patch side (kernel = stride)."),
        .vissl("MODEL.TRUNK.VISION_TRANSFORMERS.HIDDEN_DIM", .integer, min: 1, "ViT: embedding width D."),
        .vissl("MODEL.TRUNK.VISION_TRANSFORMERS.NUM_LAYERS", .integer, min: 1, "ViT: number of blocks."),
        .vissl("MODEL.TRUNK.VISION_TRANSFORMERS.NUM_HEADS", .integer, min: 1, "ViT: attention heads (divides D)."),
        .vissl("MODEL.TRUNK.VISION_TRANSFORMERS.MLP_DIM", .integer, min: 1, "ViT: hidden width of each block's MLP."),
        .vissl("MODEL.TRUNK.VISION_TRANSFORMERS.QKV_BIAS", .bool, "ViT: bias on the fused qkv projection."),
        .vissl(
            "MODEL.TRUNK.VISION_TRANSFORMERS.QK_SCALE", .any,
            "ViT: attention logit scale; false = head_dim^-0.5 (VISSL's default)."),
        .vissl(
            "MODEL.TRUNK.VISION_TRANSFORMERS.USE_CLASS_TOKEN", .bool, default: true,
            "ViT: prepend a class token (false: *POOL* taps average all tokens)."),
        .vissl(
            "MODEL.TRUNK.VISION_TRANSFORMERS.DROPOUT_RATE", .number, "ViT: dropout (training only; inert here)."),
        .vissl(
            "MODEL.TRUNK.VISION_TRANSFORMERS.ATTENTION_DROPOUT_RATE", .number,
            "ViT: attention dropout (training only; inert here)."),
        .vissl(
            "MODEL.TRUNK.VISION_TRANSFORMERS.DROP_PATH_RATE", .number,
            "ViT: stochastic depth (training only; inert here)."
        ),

        .vissl("MODEL.TRUNK.BEIT.IMAGE_SIZE", .integer, min: 1, "BEiT: image side (the input must have it)."),
        .vissl("MODEL.TRUNK.BEIT.PATCH_SIZE", .integer, min: 1, "BEiT: patch side (kernel = stride)."),
        .vissl("MODEL.TRUNK.BEIT.HIDDEN_DIM", .integer, min: 1, "BEiT: embedding width D."),
        .vissl("MODEL.TRUNK.BEIT.NUM_LAYERS", .integer, min: 1, "BEiT: number of blocks."),
        .vissl("MODEL.TRUNK.BEIT.NUM_HEADS", .integer, min: 1, "BEiT: attention heads (divides D)."),
        .vissl("MODEL.TRUNK.BEIT.MLP_RATIO", .number, min: 0, "BEiT: MLP width over D."),
        .vissl("MODEL.TRUNK.BEIT.QKV_BIAS", .bool, "BEiT: q and v biases (k has none)."),
        .vissl("MODEL.TRUNK.BEIT.QK_SCALE", .any, "BEiT: attention logit scale; false = head_dim^-0.5."),
        .vissl("MODEL.TRUNK.BEIT.USE_ABS_POS_EMB", .bool, "BEiT: absolute position embedding."),
        .vissl("MODEL.TRUNK.BEIT.USE_REL_POS_BIAS", .bool, "BEiT: relative position bias in every block."),
        .vissl("MODEL.TRUNK.BEIT.USE_SHARED_REL_POS_BIAS", .bool, "BEiT: one relative position bias for all blocks."),
        .vissl("MODEL.TRUNK.BEIT.USE_MEAN_POOLING", .bool, "BEiT: no final LayerNorm (mean-pooling head)."),
        .vissl("MODEL.TRUNK.BEIT.INIT_VALUES", .any, "BEiT: layer scale initial value; false = no layer scale."),
        .vissl("MODEL.TRUNK.BEIT.DROPOUT_RATE", .number, "BEiT: dropout (training only; inert here)."),
        .vissl("MODEL.TRUNK.BEIT.ATTENTION_DROPOUT_RATE", .number, "BEiT: attention dropout (inert here)."),
        .vissl("MODEL.TRUNK.BEIT.DROP_PATH_RATE", .number, "BEiT: stochastic depth (inert here)."),

        // RegNet (MODEL.TRUNK.REGNET, free-form in VISSL): "", 0, -1 and [] mean "not given"; the
        // other defaults are ClassyVision's.
        .vissl(
            "MODEL.TRUNK.REGNET.name", .string, default: "",
            "RegNet: a ClassyVision name (regnet_y_400mf ... regnet_y_256gf, regnet_x_*) or anynet; empty = parametric."
        ),
        .vissl("MODEL.TRUNK.REGNET.depth", .integer, default: 0, min: 0, "RegNet: number of blocks (parametric form)."),
        .vissl("MODEL.TRUNK.REGNET.w_0", .number, default: 0, min: 0, "RegNet: initial width (divisible by 8)."),
        .vissl("MODEL.TRUNK.REGNET.w_a", .number, default: -1, min: -1, "RegNet: width slope (≥ 0; -1 = not given)."),
        .vissl("MODEL.TRUNK.REGNET.w_m", .number, default: 0, min: 0, "RegNet: width multiplier per stage (> 1)."),
        .vissl(
            "MODEL.TRUNK.REGNET.group_width", .integer, default: 0, min: 0,
            "RegNet: channels per group of the 3×3 convolutions."),
        .vissl(
            "MODEL.TRUNK.REGNET.bottleneck_multiplier", .number, default: 1.0, min: 0,
            "RegNet: bottleneck width over block width."),
        .vissl(
            "MODEL.TRUNK.REGNET.stem_type", .string, default: "simple_stem_in",
            oneOf: ["simple_stem_in", "res_stem_in", "res_stem_cifar"], "RegNet: stem."),
        .vissl("MODEL.TRUNK.REGNET.stem_width", .integer, default: 32, min: 1, "RegNet: stem channels."),
        .vissl(
            "MODEL.TRUNK.REGNET.block_type", .string, default: "res_bottleneck_block",
            "RegNet: block (res_bottleneck_block is implemented)."),
        .vissl("MODEL.TRUNK.REGNET.activation", .string, default: "relu", "RegNet: activation (relu is implemented)."),
        .vissl("MODEL.TRUNK.REGNET.use_se", .bool, default: true, "RegNet: squeeze-and-excitation (RegNetY)."),
        .vissl(
            "MODEL.TRUNK.REGNET.se_ratio", .number, default: 0.25, min: 0, "RegNet: SE width over block input width."),
        .vissl("MODEL.TRUNK.REGNET.bn_epsilon", .number, default: 1e-5, min: 0, "RegNet: BatchNorm epsilon."),
        .vissl(
            "MODEL.TRUNK.REGNET.bn_momentum", .number, default: 0.1,
            "RegNet: BatchNorm momentum (training only; inert here)."),
        .vissl("MODEL.TRUNK.REGNET.depths", .list(.integer), default: [], "AnyNet: blocks per stage."),
        .vissl("MODEL.TRUNK.REGNET.widths", .list(.integer), default: [], "AnyNet: output width per stage."),
        .vissl("MODEL.TRUNK.REGNET.group_widths", .list(.integer), default: [], "AnyNet: group width per stage."),
        .vissl(
            "MODEL.TRUNK.REGNET.bottleneck_multipliers", .list(.number), default: [],
            "AnyNet: bottleneck multiplier per stage."),
        .vissl(
            "MODEL.TRUNK.REGNET.strides", .list(.integer), default: [], "AnyNet: stride of each stage's first block."),
        .vissl(
            "MODEL.TRUNK.REGNET.stage_checkpoints", .list(.list(.integer)), default: [],
            "regnet_fsdp / regnet_v2: block-group end indices per stage (decides the -part{g} checkpoint keys)."),

        .vissl("MODEL.FEATURE_EVAL_SETTINGS.EVAL_MODE_ON", .bool, "Evaluate a frozen model (linear benchmark mode)."),
        .vissl("MODEL.FEATURE_EVAL_SETTINGS.FREEZE_TRUNK_ONLY", .bool, "Freeze the trunk and train only the heads."),
        .vissl(
            "MODEL.FEATURE_EVAL_SETTINGS.EXTRACT_TRUNK_FEATURES_ONLY", .bool,
            "Only extract trunk features (the SVM benchmarks)."),
        .vissl(
            "MODEL.FEATURE_EVAL_SETTINGS.SHOULD_FLATTEN_FEATS", .bool, "Flatten pooled features to vectors (C·H·W)."),
        .vissl(
            "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP", .list(.list(.any)),
            "Taps and their pooling: [[tap, [op, [args]]], ...], e.g. [\"res5\", [\"AvgPool2d\", [[6, 6], 1, 0]]]."),

        .vissl("MODEL.WEIGHTS_INIT.PARAMS_FILE", .string, "Checkpoint with the trunk weights."),
        .vissl(
            "MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME", .any,
            "Key of the state dict inside the checkpoint (classy_state_dict, model, loss, or empty for a bare state dict), or a list of keys indexed in turn (e.g. [loss, teacher])."
        ),
        .vissl("MODEL.WEIGHTS_INIT.APPEND_PREFIX", .string, "Prefix added to every checkpoint key before matching."),
        .vissl(
            "MODEL.WEIGHTS_INIT.REMOVE_PREFIX", .string, "Prefix removed from every checkpoint key before matching."),
        .vissl(
            "MODEL.WEIGHTS_INIT.SKIP_LAYERS", .list(.string),
            "Checkpoint keys containing any of these strings are not loaded."),

        .vissl(
            "MODEL.HEAD.PARAMS", .list(.list(.any)),
            "Heads, one per pool-op entry: [[\"eval_mlp\", {in_channels: C, dims: [D, K]}], [\"mlp\", {dims: [D, K]}], ...]."
        ),
        .vissl("MODEL.HEAD.BATCHNORM_EPS", .number, min: 0, "Epsilon of the eval_mlp heads' BatchNorm."),
        .vissl(
            "MODEL.HEAD.BATCHNORM_MOMENTUM", .number, min: 0, max: 1,
            "Momentum of the eval_mlp heads' BatchNorm running statistics."),
        .vissl("MODEL.HEAD.PARAMS_MULTIPLIER", .number, "Scale of the heads' initial parameters."),

        .vissl("SEED_VALUE", .integer, "Seed of head initialisation, data order and augmentation."),
        .vissl(
            "DISTRIBUTED.NUM_NODES", .integer, min: 1,
            "VISSL machines; with NUM_PROC_PER_NODE it sets the global batch Linprobe reproduces on one CPU."),
        .vissl(
            "DISTRIBUTED.NUM_PROC_PER_NODE", .integer, min: 1,
            "VISSL processes (GPUs) per machine; global batch = BATCHSIZE_PER_REPLICA × NUM_PROC_PER_NODE × NUM_NODES."),

        .vissl("OPTIMIZER.name", .string, "Optimizer of the linear heads (sgd)."),
        .vissl("OPTIMIZER.momentum", .number, min: 0, "SGD momentum."),
        .vissl("OPTIMIZER.nesterov", .bool, "Nesterov momentum."),
        .vissl("OPTIMIZER.weight_decay", .number, min: 0, "L2 weight decay (coupled, as torch.optim.SGD)."),
        .vissl("OPTIMIZER.regularize_bn", .bool, "Apply weight decay to BatchNorm parameters."),
        .vissl("OPTIMIZER.regularize_bias", .bool, "Apply weight decay to biases."),
        .vissl("OPTIMIZER.num_epochs", .integer, min: 1, "Training epochs of the linear heads."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.auto_scale", .bool,
            "Scale the learning rate with the global batch size."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.base_value", .number, min: 0,
            "Learning rate at base_lr_batch_size."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.base_lr_batch_size", .integer, min: 1,
            "Batch size base_value refers to."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.scaling_type", .string, oneOf: ["linear", "sqrt"],
            "How the learning rate scales with the batch size."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.name", .string,
            "Learning-rate schedule (multistep, cosine, linear, constant, composite, ...)."),
        .vissl("OPTIMIZER.param_schedulers.lr.values", .list(.number), "multistep: learning rate of each step."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.milestones", .list(.integer),
            "multistep: epochs (or iterations) where the next value starts."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.update_interval", .string, oneOf: ["epoch", "step"],
            "Update the learning rate every epoch or every step."),
        .vissl("OPTIMIZER.param_schedulers.lr.value", .number, "constant: the learning rate."),
        .vissl("OPTIMIZER.param_schedulers.lr.start_value", .number, "linear/cosine: learning rate at the start."),
        .vissl("OPTIMIZER.param_schedulers.lr.end_value", .number, "linear/cosine: learning rate at the end."),
        .vissl("OPTIMIZER.param_schedulers.lr.schedulers", .list(.mapping), "composite: the schedules in order."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.interval_scaling", .list(.string),
            "composite: rescaled or fixed, per schedule."),
        .vissl(
            "OPTIMIZER.param_schedulers.lr.lengths", .list(.number), "composite: fraction of training per schedule."),

        .vissl(
            "LOSS.name", .string,
            "Loss of the linear heads (cross_entropy_multiple_output_single_target: sum of per-head cross-entropies)."),
        .vissl(
            "LOSS.cross_entropy_multiple_output_single_target.ignore_index", .integer,
            "Target value excluded from the loss."),
        .vissl("METERS.name", .string, "Metric of the linear heads (accuracy_list_meter)."),
        .vissl("METERS.accuracy_list_meter.topk_values", .list(.integer), "Top-k accuracies reported per head."),
        .vissl(
            "TEST_EVERY_NUM_EPOCH", .integer, min: 1, "Evaluate the heads on the test split every this many epochs."),

        .vissl("SVM.normalize", .bool, "L2-normalise features before SVM training."),
        .vissl("SVM.cls_list", .list(.integer), "Classes to train SVMs for (empty = all)."),
        .vissl("SVM.loss", .string, oneOf: ["squared_hinge", "hinge"], "SVM loss (liblinear)."),
        .vissl("SVM.penalty", .string, oneOf: ["l2", "l1"], "SVM weight penalty."),
        .vissl("SVM.dual", .bool, "Solve the dual problem."),
        .vissl("SVM.max_iter", .integer, min: 1, "Solver iteration limit."),
        .vissl("SVM.cross_val_folds", .integer, min: 2, "Cross-validation folds for choosing each class's cost."),
        .vissl("SVM.costs.costs_list", .list(.number), min: 0, "Costs (C) tried for every class."),
        .vissl("SVM.costs.base", .number, "If > 0, costs are also base^p for p in power_range."),
        .vissl("SVM.costs.power_range", .list(.integer), "[start, stop) of the powers of SVM.costs.base."),
        .vissl("SVM.force_retrain", .bool, "Retrain SVMs even when trained models exist."),
        .linprobe(
            "SVM.solver", .string, default: "vissl", oneOf: ["vissl", "converged"],
            "vissl: liblinear's dual coordinate descent stopped at max_iter (VISSL's numbers); converged: each "
                + "cost's optimum of the same objective (primal Newton, warm-started along the costs)."),
        .vissl("SVM.low_shot.dataset_name", .string, "Low-shot sample files to use (voc or places)."),
        .vissl("SVM.low_shot.sample_inds", .list(.integer), "Low-shot sample draws to average over."),
        .vissl("SVM.low_shot.k_values", .list(.integer), min: 1, "Low-shot samples per class."),

        .vissl(
            "NEAREST_NEIGHBOR.TOPK", .oneOrList(.integer), min: 1,
            "Neighbours k of the kNN vote; a list evaluates every k from one search."),
        .vissl(
            "NEAREST_NEIGHBOR.SIGMA", .number, min: 0,
            "Temperature of the kNN vote: neighbour j weighs exp(similarity_j / SIGMA)."),
        .vissl(
            "NEAREST_NEIGHBOR.L2_NORM_FEATS", .bool,
            "L2-normalise train and test features before the kNN search (cosine similarity)."),
    ]

    private static let linprobe: [ConfigKey] = [
        .linprobe(
            "LINPROBE.STAGES", .list(.string), default: [], oneOf: StageKind.allCases.map { .string($0.name) },
            "Stages `run` performs; empty = decided by the pipeline's content."),
        .linprobe(
            "LINPROBE.STORAGE_DTYPE", .string, default: "float32", oneOf: ["float32", "float16"],
            "Element type of the stored features."),
        .linprobe(
            "LINPROBE.DEFLATE", .integer, default: 0, min: 0, max: 9, "Deflate level of the feature store (0 = none)."),
        .linprobe("LINPROBE.THREADS", .integer, default: 0, min: 0, "Compute threads (0 = all cores)."),
        .linprobe(
            "LINPROBE.TRUNK.ALGORITHM", .string, default: "auto", oneOf: ["auto", "winograd", "winograd4", "im2col"],
            "Convolution algorithm of the 3x3 stride-1 layers: auto (measured per layer shape, cached per machine), winograd (F(2x2,3x3)), winograd4 (F(4x4,3x3)) or im2col."
        ),
        .linprobe(
            "LINPROBE.TRUNK.PARALLELISM", .string, default: "auto", oneOf: ["auto", "batch", "blas"],
            "Trunk threads: auto (measured, cached per machine), batch (images split over threads) or blas (threaded GEMMs)."
        ),
        .linprobe(
            "LINPROBE.TRAIN_VIEWS", .integer, default: 1, min: 1,
            "Augmented views of each training image stored for linear training."),
        .linprobe(
            "LINPROBE.STRICT_IMAGES", .bool, default: false,
            "Fail on an unreadable image instead of replacing it with a gray image."),
        .linprobe(
            "LINPROBE.MAX_IMAGE_PIXELS", .integer, default: .int(89_478_485), min: 1,
            "PIL's Image.MAX_IMAGE_PIXELS: an image of more than twice this many pixels is unreadable, refused before decoding (PIL's DecompressionBombError)."
        ),
        .linprobe(
            "LINPROBE.DATASET_CATALOG", .string, default: "",
            "Dataset catalog JSON (\"\" = $LINPROBE_DATASET_CATALOG, else $VISSL_DATASET_CATALOG_PATH, else the built-in search)."
        ),
        .linprobe(
            "LINPROBE.INPUT_SIZE", .integer, default: 0, min: 0,
            "Trunk input side in pixels (0 = as the transforms give)."),
        .linprobe(
            "LINPROBE.SVM.LOW_SHOT", .bool, default: false,
            "Run the low-shot SVM protocol (SVM.low_shot.*) instead of the full one."),
        .linprobe(
            "LINPROBE.SVM.SELECT_BY", .string, default: "cv", oneOf: ["cv"],
            "How each class's cost is chosen (cv: VISSL's cross-validated AP)."),
        .linprobe(
            "LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS", .integer, default: 4096, min: 1,
            "Rows read together when shuffling stored features for linear training."),
        .linprobe(
            "LINPROBE.LINEAR.MULTI_LABEL", .bool, default: false, "Train the linear heads on multi-label targets."),
        .linprobe("LINPROBE.REPORT.TITLE", .string, default: "", "Report title (\"\" = the pipeline's name)."),
        .linprobe(
            "LINPROBE.KNN.PROTOCOL", .string, default: "vissl", oneOf: ["vissl", "dino"],
            "kNN protocol: VISSL's knn_utils (NEAREST_NEIGHBOR.*), or DINO's eval_knn (LINPROBE.KNN.DINO.*; "
                + "features always L2-normalised)."),
        .linprobe(
            "LINPROBE.KNN.DINO.NB_KNN", .list(.integer), default: [10, 20, 100, 200], min: 1,
            "DINO's --nb_knn: the k of its weighted kNN (LINPROBE.KNN.PROTOCOL dino)."),
        .linprobe(
            "LINPROBE.KNN.DINO.TEMPERATURE", .number, default: 0.07, min: 0,
            "DINO's --temperature T: neighbour j weighs exp(similarity_j / T) (LINPROBE.KNN.PROTOCOL dino)."),
        .linprobe(
            "LINPROBE.KNN.MEMORY_MB", .integer, default: 1024, min: 16,
            "Memory for the kNN search's test block, similarities and neighbour heaps (the training store streams)."),
        .linprobe(
            "LINPROBE.IMPORT.TRAIN.FEATURES", .string, default: "",
            "Import instead of extracting: a folder of VISSL's extract_features files, an .npy/.npz file, a torch.save "
                + "file, or a folder written by export-features (\"\" = extract)."),
        .linprobe(
            "LINPROBE.IMPORT.TRAIN.LABELS", .string, default: "",
            "Labels of an imported .npy/.pth features array: [N] class indices or [N, C] VOC-encoded (1/0/-1)."),
        .linprobe(
            "LINPROBE.IMPORT.TEST.FEATURES", .string, default: "", "As LINPROBE.IMPORT.TRAIN.FEATURES, for TEST."),
        .linprobe("LINPROBE.IMPORT.TEST.LABELS", .string, default: "", "As LINPROBE.IMPORT.TRAIN.LABELS, for TEST."),
        .linprobe(
            "LINPROBE.IMPORT.LAYER", .string, default: "heads",
            "Layer name of an imported array that does not name its layer (VISSL's name for head outputs: heads)."),
    ]

    /// Registry keys by path.
    public static let byPath: [String: ConfigKey] = Dictionary(
        all.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })

    public static func key(_ path: String) -> ConfigKey? { byPath[path] }
}
