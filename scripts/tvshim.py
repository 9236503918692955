"""Import this before torchvision when torchvision's compiled ops do not match the CPU torch
build (PyPI's torchvision is a CUDA build): registration of fake kernels for ops that do not
exist is skipped, so the pure-Python models and transforms import fine."""
import torch.library as _library

_register_fake = _library.register_fake


def _tolerant(op, *args, **kwargs):
    decorator = _register_fake(op, *args, **kwargs)

    def apply(fn):
        try:
            return decorator(fn)
        except RuntimeError:
            return fn

    return apply


_library.register_fake = _tolerant
import torchvision  # noqa: E402,F401

_library.register_fake = _register_fake
