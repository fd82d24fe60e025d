"""mechscope: a fast, offline transformer debugger.

>>> import mechscope as ms
>>> model = ms.load_model()            # SmolLM2-135M-Instruct, embedded
>>> logits, cache = model.run_with_cache("The capital of France is")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["HookedDecoder", "ModelConfig", "__version__", "load_model"]

if TYPE_CHECKING:
    from mechscope.models.config import ModelConfig
    from mechscope.models.decoder import HookedDecoder
    from mechscope.models.loading import load_model


def __getattr__(name: str) -> Any:
    # Lazy: `import mechscope` must not import torch (the CLI's --help stays instant).
    if name == "load_model":
        from mechscope.models.loading import load_model

        return load_model
    if name == "HookedDecoder":
        from mechscope.models.decoder import HookedDecoder

        return HookedDecoder
    if name == "ModelConfig":
        from mechscope.models.config import ModelConfig

        return ModelConfig
    raise AttributeError(f"module 'mechscope' has no attribute {name!r}")
