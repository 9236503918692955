# Sourced by the benchmark scripts: provides $PY, a Python with the reference packages.
# Reference Python is for benchmarks and fixtures only; Linprobe and its tests never need it.
VENV_DIR="${LINPROBE_BENCH_VENV:-.venv-bench}"
if [ ! -x "$VENV_DIR/bin/python" ]; then
  echo "creating $VENV_DIR (torch CPU, torchvision, timm, scikit-learn, h5py, onnxruntime)" >&2
  python3 -m venv "$VENV_DIR"
  "$VENV_DIR/bin/pip" install -q "torch==2.13.0+cpu" torchvision timm scikit-learn h5py numpy pillow onnx onnxruntime >&2
fi
PY="$VENV_DIR/bin/python"
export PY
