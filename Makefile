# Linprobe — build, test, benchmark and demo entry points.
# `make demo` and `make test` do all set-up on a fresh Debian machine (as root, or with sudo).

SHELL := /bin/bash
SWIFT ?= swift
DEB_PACKAGES := libhdf5-dev libopenblas-dev libturbojpeg0-dev libpng-dev pkg-config hdf5-tools
RELEASE_FLAGS := -c release
TEST_FLAGS := -c release -Xswiftc -enable-testing
BIN := .build/release/linprobe
VENV ?= .venv-bench

.PHONY: all setup build test bench clean

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
	$(SWIFT) build $(TEST_FLAGS)
	$(SWIFT) test $(TEST_FLAGS)

## bench: benchmarks against the reference implementations (needs Python; see README)
bench: build
	bash Benchmarks/run.sh

clean:
	rm -rf .build runs
