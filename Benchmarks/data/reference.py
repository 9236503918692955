"""PIL + torchvision side of Benchmarks/data/bench.sh: the same files, the same transforms, one
thread; prints the median milliseconds per image for decode, transforms and the whole load."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import tvshim  # noqa: E402,F401

import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(1)
repeats, kind, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
if kind == "train":
    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), norm])
else:
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm])


def load(path):
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def per_image(body):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(len(files)):
            body(i)
        samples.append((time.perf_counter() - start) * 1e3 / len(files))
    return sorted(samples)[len(samples) // 2]


import io  # noqa: E402

contents = [open(p, "rb").read() for p in files]
for p in files:
    tf(load(p))
decode = per_image(lambda i: Image.open(io.BytesIO(contents[i])).convert("RGB"))
decoded = [load(p) for p in files]
transform = per_image(lambda i: tf(decoded[i]))
total = per_image(lambda i: tf(load(files[i])))
print(json.dumps({"side": "pil+torchvision", "decode_ms": decode, "transform_ms": transform, "total_ms": total}))
