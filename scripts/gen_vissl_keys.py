#!/usr/bin/env python3
"""Generate Sources/LinprobeCore/Config/VISSLKeyTree+Generated.swift from VISSL's defaults.yaml.

Run by hand (needs PyYAML) whenever the VISSL reference commit changes:

    python3 scripts/gen_vissl_keys.py <vissl>/vissl/config/defaults.yaml \
        --commit <sha> \
        --scan <vissl>/configs/config/benchmark/linear_image_classification \
        --scan <vissl>/configs/config/benchmark/low_shot_transfer \
        -o Sources/LinprobeCore/Config/VISSLKeyTree+Generated.swift

What is recorded (facts only, no comments of the source file):
  * every key under the root `config:` of defaults.yaml with its kind and default value;
  * the keys outside `config:` (Hydra/VISSL root keys such as `engine_name`);
  * "legacy" keys: keys that VISSL's own shipped configs (the --scan folders) set although
    defaults.yaml does not define them (e.g. `MONITOR_PERF_STATS` at the root of the Places205
    benchmark config). Linprobe accepts them as VISSL keys so that VISSL's files load unchanged.

YAML is read the way VISSL reads it (OmegaConf's loader): PyYAML's SafeLoader plus OmegaConf's
extra float resolver (so `1e-5` is a float) and without timestamps.
"""

import argparse
import json
import os
import re
import sys

import yaml


def omegaconf_like_loader():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:
             [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |\.[0-9_]+(?:[eE][-+][0-9]+)?
            |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )
    Loader.yaml_implicit_resolvers = {
        key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in Loader.yaml_implicit_resolvers.items()
    }
    return Loader


def kind_of(value):
    if isinstance(value, dict):
        return "mapping" if value else "open"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    raise SystemExit(f"unexpected value type {type(value).__name__}: {value!r}")


def walk(node, prefix, out):
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        kind = kind_of(value)
        default = None if kind in ("mapping", "open") else value
        out.append((path, kind, default))
        if kind == "mapping":
            walk(value, path, out)


def scan_legacy(folders, known, loader, repo_root):
    """Keys set by VISSL's shipped configs that defaults.yaml lacks."""
    by_path = {p: k for p, k, _ in known}

    def accepted(path):
        if path in by_path:
            return True
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            kind = by_path.get(".".join(parts[:i]))
            if kind is not None:
                return kind != "mapping"  # below an open mapping, a null or a leaf: free-form
        return False

    legacy = {}

    def visit(node, prefix, source):
        for key, value in node.items():
            key = str(key)
            # TRUNK_PARAMS.<X> is the newer spelling of TRUNK.<X> (Linprobe folds it).
            if key == "TRUNK_PARAMS" and prefix.endswith("TRUNK"):
                if isinstance(value, dict):
                    visit(value, prefix, source)
                continue
            path = f"{prefix}.{key}" if prefix else key
            if not accepted(path):
                legacy.setdefault(path, source)
                continue
            if isinstance(value, dict) and by_path.get(path) == "mapping":
                visit(value, path, source)

    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".yaml"):
                    continue
                full = os.path.join(root, name)
                with open(full) as f:
                    doc = yaml.load(f, Loader=loader)
                if isinstance(doc, dict) and isinstance(doc.get("config"), dict):
                    rel = os.path.relpath(os.path.abspath(full), repo_root)
                    visit(doc["config"], "", rel)
    return sorted(legacy.items())


def swift_string_literal(text):
    return "#\"\"\"\n" + text + "\n\"\"\"#"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("defaults", help="path to vissl/config/defaults.yaml")
    ap.add_argument("--commit", required=True, help="VISSL commit the file was read at")
    ap.add_argument("--scan", action="append", default=[], help="VISSL config folder to scan for legacy keys")
    ap.add_argument("-o", "--output", help="output Swift file (default: stdout)")
    args = ap.parse_args()

    loader = omegaconf_like_loader()
    with open(args.defaults) as f:
        doc = yaml.load(f, Loader=loader)
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise SystemExit("defaults.yaml: expected a root mapping with a `config:` key")

    entries = []
    walk(doc["config"], "", entries)
    root_keys = sorted(str(k) for k in doc if k != "config")
    # defaults.yaml lives at <repo>/vissl/config/defaults.yaml; scanned paths are recorded
    # relative to <repo>.
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(args.defaults))))
    legacy = scan_legacy(args.scan, entries, loader, repo_root)

    entries_literal = swift_string_literal("[\n" + ",\n".join(json.dumps([p, k, d]) for p, k, d in entries) + "\n]")
    legacy_literal = swift_string_literal("[\n" + ",\n".join(json.dumps([p, s]) for p, s in legacy) + "\n]")
    root_list = ", ".join(json.dumps(k) for k in root_keys)

    swift = f"""// Generated by scripts/gen_vissl_keys.py — do not edit by hand.
// Source: facebookresearch/vissl, vissl/config/defaults.yaml at commit {args.commit}
// (VISSL is MIT-licensed). Key paths, kinds and default values only.

extension VISSLKeyTree {{
    /// The VISSL commit these keys were read from.
    static let sourceCommit = "{args.commit}"

    /// Keys of defaults.yaml outside its root `config:` (Hydra and VISSL launcher keys).
    static let rootKeys: [String] = [{root_list}]

    /// `[path, kind, default]` for every key under `config:`, in file order. Kinds: `mapping`
    /// (has children), `open` (empty mapping: any children), `null`, `bool`, `int`, `float`,
    /// `string`, `list`.
    static let entriesJSON = {entries_literal}

    /// `[path, first VISSL config that sets it]` for keys VISSL's shipped benchmark configs set
    /// although defaults.yaml does not define them.
    static let legacyJSON = {legacy_literal}
}}
"""
    if args.output:
        with open(args.output, "w") as f:
            f.write(swift)
    else:
        sys.stdout.write(swift)


if __name__ == "__main__":
    main()
