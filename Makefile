# Linprobe — build, test, benchmark and demo entry points.
# `make demo` and `make test` do all set-up on a fresh Debian machine (as root, or with sudo).

SHELL := /bin/bash
SWIFT ?= swift
DEB_PACKAGES := libhdf5-dev libopenblas-dev libturbojpeg0-dev libpng-dev pkg-config hdf5-tools
# One set of flags for the tool, the tests and the benchmarks, so switching between them never
# rebuilds everything (-enable-testing only exports internal symbols to the test targets).
RELEASE_FLAGS := -c release -Xswiftc -enable-testing
TEST_FLAGS := $(RELEASE_FLAGS)
BIN := .build/release/linprobe
VENV ?= .venv-bench

.PHONY: all setup build test lint format fuzz bench clean demo slurm-demo voc07 voc07_low_shot imagenet1k imagenet1k_knn places205 inaturalist18

WORKDIR ?= runs
THREADS ?= 0
EXTRA ?=
# MODEL=NAME adds VISSL's overlay <dataset>/models/NAME.yaml from VISSL's configs folder
# (CONFIGS=/path/to/vissl/configs, or $LINPROBE_VISSL_CONFIGS); OVERLAYS='+GROUP=NAME ...' adds others.
MODEL ?=
OVERLAYS ?=
CONFIGS ?=
# WEIGHTS=random runs VISSL's random-initialisation baseline.
weights_override = config.MODEL.WEIGHTS_INIT.PARAMS_FILE=$(if $(filter random,$(WEIGHTS)),"",$(WEIGHTS))
need_weights = $(if $(WEIGHTS),,$(error set WEIGHTS=/path/to/checkpoint.torch (or WEIGHTS=random for VISSL's random baseline)))
need_data = $(if $(DATA),,$(error set DATA=$(1)))
need_configs = $(if $(MODEL),$(if $(CONFIGS)$(LINPROBE_VISSL_CONFIGS),,$(error MODEL=$(MODEL) is a VISSL overlay: set CONFIGS=/path/to/vissl/configs (or LINPROBE_VISSL_CONFIGS))))
# The overlays of a benchmark on dataset $(1): MODEL's, then OVERLAYS.
overlays = $(if $(MODEL),+config/benchmark/linear_image_classification/$(1)/models=$(MODEL)) $(OVERLAYS)
RUN = $(BIN) run --workdir $(WORKDIR) --threads $(THREADS) $(if $(CONFIGS),--configs $(CONFIGS))

all: build

## setup: install the Debian packages Linprobe links against (only those missing; idempotent)
setup:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "system packages present"; fi

## build: release build of the linprobe executable
build: setup
	$(SWIFT) build $(RELEASE_FLAGS) --product linprobe

## test: set-up, build and every test (release mode: the numeric tests need it)
test: setup
	$(SWIFT) build --build-tests $(TEST_FLAGS)
	# The trunk-tuning cache of in-process extractions goes to a throw-away folder, not the user's.
	cache=$$(mktemp -d) && XDG_CACHE_HOME=$$cache $(SWIFT) test --skip-build $(TEST_FLAGS); \
		status=$$?; rm -rf "$$cache"; exit $$status

## lint: swift-format's lint over every Swift file, with the rules in .swift-format (run by CI)
lint:
	$(SWIFT) format lint --strict --recursive --parallel Package.swift Sources Tests Benchmarks Fuzz

## format: rewrite every Swift file in place with the rules in .swift-format
format:
	$(SWIFT) format format --in-place --recursive --parallel Package.swift Sources Tests Benchmarks Fuzz

## fuzz: seeded mutation loops over every parser (checkpoint, yaml, npy, store, image); not part of `make test`.
##   ITER=<mutants per target> (default: each target's own count), SEED=<n>, findings in FUZZ_FINDINGS
FUZZ_FINDINGS ?= fuzz-findings
fuzz: setup
	$(SWIFT) build $(RELEASE_FLAGS) --product linprobe-fuzz
	.build/release/linprobe-fuzz --findings $(FUZZ_FINDINGS) $(if $(ITER),--iterations $(ITER)) $(if $(SEED),--seed $(SEED))

## bench: benchmarks against the reference implementations (needs Python; see README)
bench: build
	bash Benchmarks/run.sh

## demo: set-up, build, and the whole pipeline on the embedded demo set (prints the table and report.html)
demo: build
	$(BIN) run demo --workdir $(WORKDIR)/demo

## slurm-demo: the demo through a local one-node Slurm (scripts/slurm-local.sh; root or sudo), 3 shards per split
slurm-demo: build
	bash scripts/slurm-demo.sh $(abspath $(BIN)) $(abspath $(WORKDIR))/slurm-demo

## Benchmarks on real data (each runs extract → train → report; stores are shared; safe under make -j2):
##   make voc07 WEIGHTS=rn50.torch DATA=/data/VOCdevkit/VOC2007
##   make voc07_low_shot WEIGHTS=rn50.torch DATA=/data/VOCdevkit/VOC2007
##   make imagenet1k WEIGHTS=rn50.torch DATA=/data/imagenet        (DATA/train, DATA/val class folders)
##   make places205 WEIGHTS=rn50.torch DATA=/data/places205        (DATA/train, DATA/val class folders)
##   make inaturalist18 WEIGHTS=rn50.torch DATA=/data/inat18       (DATA/{train,val}_{images,labels}.npy)
##   make imagenet1k_knn WEIGHTS=rn50.torch DATA=/data/imagenet    (VISSL's kNN benchmark: k 200, sigma 0.1)
## Another trunk: MODEL=NAME adds VISSL's models/NAME.yaml overlay of that dataset (needs CONFIGS=/path/to/vissl/configs
## or $LINPROBE_VISSL_CONFIGS), e.g. make imagenet1k MODEL=resnet50_w2 CONFIGS=~/vissl/configs WEIGHTS=… DATA=…;
## OVERLAYS='+GROUP=NAME ...' adds further overlays (+config/… in the configs folder, or GROUP/NAME.yaml in pipelines/).
## Further overrides: EXTRA='config.SVM.costs.costs_list=[0.1,1.0]'; work folder: WORKDIR=runs.
voc07: build
	$(need_weights)$(need_configs)$(call need_data,/path/to/VOCdevkit/VOC2007)
	$(RUN) voc07_svm $(call overlays,voc07) $(weights_override) "config.DATA.TRAIN.DATA_PATHS=[$(DATA)]" "config.DATA.TEST.DATA_PATHS=[$(DATA)]" $(EXTRA)

voc07_low_shot: build
	$(need_weights)$(need_configs)$(call need_data,/path/to/VOCdevkit/VOC2007)
	$(RUN) voc07_low_shot_svm $(call overlays,voc07) $(weights_override) "config.DATA.TRAIN.DATA_PATHS=[$(DATA)]" "config.DATA.TEST.DATA_PATHS=[$(DATA)]" $(EXTRA)

imagenet1k: build
	$(need_weights)$(need_configs)$(call need_data,/path/to/imagenet (with train/ and val/ class folders))
	$(RUN) imagenet1k_linear $(call overlays,imagenet1k) $(weights_override) "config.DATA.TRAIN.DATA_PATHS=[$(DATA)/train]" "config.DATA.TEST.DATA_PATHS=[$(DATA)/val]" $(EXTRA)

imagenet1k_knn: build
	$(need_weights)$(call need_data,/path/to/imagenet (with train/ and val/ class folders))
	$(RUN) imagenet1k_knn $(weights_override) "config.DATA.TRAIN.DATA_PATHS=[$(DATA)/train]" "config.DATA.TEST.DATA_PATHS=[$(DATA)/val]" $(EXTRA)

places205: build
	$(need_weights)$(need_configs)$(call need_data,/path/to/places205 (with train/ and val/ class folders))
	$(RUN) places205_linear $(call overlays,places205) $(weights_override) "config.DATA.TRAIN.DATA_PATHS=[$(DATA)/train]" "config.DATA.TEST.DATA_PATHS=[$(DATA)/val]" $(EXTRA)

inaturalist18: build
	$(need_weights)$(need_configs)$(call need_data,/path/to/inat18 (with train_images.npy train_labels.npy val_images.npy val_labels.npy))
	$(RUN) inaturalist18_linear $(call overlays,inaturalist18) $(weights_override) \
	  "config.DATA.TRAIN.DATA_PATHS=[$(DATA)/train_images.npy]" "config.DATA.TRAIN.LABEL_PATHS=[$(DATA)/train_labels.npy]" \
	  "config.DATA.TEST.DATA_PATHS=[$(DATA)/val_images.npy]" "config.DATA.TEST.LABEL_PATHS=[$(DATA)/val_labels.npy]" $(EXTRA)

clean:
	rm -rf .build runs
