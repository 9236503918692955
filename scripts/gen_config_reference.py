#!/usr/bin/env python3
"""Reference data for the configuration loader, from the tools VISSL itself uses.

Writes Tests/Fixtures/config/reference.json with:
  * yaml_files:   every VISSL benchmark config and seed snippet under Tests/Fixtures/vissl-configs,
                  as OmegaConf.load reads it (VISSL's loader: PyYAML SafeLoader + OmegaConf's float
                  resolver);
  * yaml_scalars: how OmegaConf reads `v: <text>` for tricky plain scalars (YAML 1.1 booleans,
                  octal, sexagesimal, floats without a dot, ...);
  * overrides:    how Hydra's override parser reads `key=<value>` (Hydra's grammar differs from
                  YAML: `yes` is a string, `inf` a float, `a,b` a sweep).

Run by hand from the repository root, in a virtual environment with omegaconf and hydra-core:

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install omegaconf hydra-core
    /tmp/refvenv/bin/python scripts/gen_config_reference.py

Values are tagged so that JSON keeps integers and floats apart: {"int": "12"}, {"float": "0.001"},
{"map": {...}}; strings, booleans, null and lists are plain JSON.
"""

import json
import math
import os
import sys

import hydra
import omegaconf
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")


def tag(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {"map": {str(k): tag(v) for k, v in value.items()}}
    raise SystemExit(f"unexpected value {value!r}")


def yaml_files():
    out = {}
    base = os.path.join(FIXTURES, "vissl-configs")
    for root, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(root, name)
            cfg = OmegaConf.load(path)
            out[os.path.relpath(path, FIXTURES)] = tag(OmegaConf.to_container(cfg, resolve=False))
    return out


YAML_SCALARS = [
    "True", "False", "true", "FALSE", "yes", "Yes", "NO", "on", "Off", "y", "n",
    "~", "null", "Null", "NULL", "",
    "0", "42", "-3", "+7", "-0", "1_000", "1__0", "_1", "00", "010", "0_7", "08", "0o17",
    "0x1F", "0b101", "1:30", "1:30.5", "190:20:30",
    "1e-5", "1E3", "1e+3", "1.5e3", "1.", "6.", "0.", ".5", "+.5", "-.5", ".5e3", ".5e+3", "3e",
    "-0.25", "0.0005", "1_0.5", ".inf", "-.inf", "+.inf", ".Inf", "inf", "nan", "NaN",
    "2024-01-01", "1.2.3", "e5", "abc", "/data/voc", "disk_folder", "classy_state_dict",
]


def yaml_scalars():
    out = []
    for text in YAML_SCALARS:
        value = OmegaConf.to_container(OmegaConf.create("v: " + text), resolve=False)["v"]
        if isinstance(value, float) and math.isnan(value):
            out.append([text, {"float": "nan"}])
        else:
            out.append([text, tag(value)])
    return out


OVERRIDES = [
    "a.b=1", "a.b=0", "a.b=+7", "a.b=-3", "a.b=1_000", "a.b=1__0", "a.b=010", "a.b=08", "a.b=0x1F",
    "a.b=yes", "a.b=off", "a.b=True", "a.b=TRUE", "a.b=false", "a.b=null", "a.b=NULL", "a.b=nullx", "a.b=true_x",
    "a.b=1e-3", "a.b=1E3", "a.b=1e+3", "a.b=1e5", "a.b=1.", "a.b=.5", "a.b=.5e3", "a.b=5.e3", "a.b=08.5",
    "a.b=-0.25", "a.b=inf", "a.b=-inf", "a.b=+inf", "a.b=INF",
    "a.b=", "a.b= x ", "a.b=a b", "a.b=http://x", "a.b=a:b", "a.b=*.jpg", "a.b=/data/VOC2007", "a.b=My run: *.jpg",
    "a.b=e5", "a.b=1.2.3", "a.b=-", "a.b=_1", "a.b=1_",
    "a.b=[/data/VOC2007]", "a.b=[1,2.5,abc, 'q r',\"x\"]", "a.b=[a b, c]", "a.b=[x:y]", "a.b=[\"a,b\"]",
    'a.b=[["res5",["AvgPool2d",[[6,6],1,0]]]]', "a.b=[a, [b, c]]", "a.b=[1, null, true]", "a.b=[]", "a.b=[ ]",
    "a.b={k: 1, l: [1,2]}", "a.b={a:1}", "a.b={a: b c}", "a.b={a: {b: 1}}", "a.b={}",
    'a.b="quo\\"te"', "a.b='it\\'s'", "a.b='yes'", 'a.b="1e3"',
    "a.b=a,b", "a.b=[1,2", "a.b='abc", "a.b=[1,2,]", 'a.b="a"b',
]


def overrides():
    parser = OverridesParser.create()
    out = []
    for text in OVERRIDES:
        try:
            override = parser.parse_override(text)
        except Exception as error:  # Hydra refuses it: Linprobe must refuse it too
            out.append([text, {"error": str(error).splitlines()[0]}])
            continue
        if override.is_sweep_override():
            out.append([text, {"sweep": True}])
            continue
        value = override.value()
        if isinstance(value, float) and math.isnan(value):
            out.append([text, {"float": "nan"}])
        else:
            out.append([text, tag(value)])
    return out


def main():
    data = {
        "tools": {"omegaconf": omegaconf.__version__, "hydra-core": hydra.__version__, "pyyaml": yaml.__version__},
        "yaml_files": yaml_files(),
        "yaml_scalars": yaml_scalars(),
        "overrides": overrides(),
    }
    out_dir = os.path.join(FIXTURES, "config")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.join(out_dir, 'reference.json')}", file=sys.stderr)


if __name__ == "__main__":
    main()
