"""Typed exceptions. Every message says what was wrong, where, and what is allowed."""

from __future__ import annotations


class MechscopeError(Exception):
    """Base class of every error mechscope raises on purpose."""


class ModelLoadError(MechscopeError):
    """A model file or folder is missing, truncated, corrupted or inconsistent."""


class UnsupportedArchitectureError(ModelLoadError):
    """The checkpoint declares an architecture mechscope does not implement."""


class UnsupportedTensorTypeError(ModelLoadError):
    """A weight file stores a tensor in a type (e.g. a GGUF quantization) mechscope cannot read."""


class UnsupportedTokenizerError(ModelLoadError):
    """A model file's tokenizer is missing or of a kind mechscope cannot rebuild."""


class HookError(MechscopeError):
    """A hook name is unknown, or a hook returned something unusable."""


class InputError(MechscopeError):
    """Bad user input to a library call (empty prompt, wrong shape, bad option)."""
