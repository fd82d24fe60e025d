"""Collated activation datasets: what makes each MLP neuron and attention head fire over a corpus.

``corpora`` reads documents and cuts token windows, ``collate`` runs the streaming pass,
``schema`` defines the tables, ``store`` owns the files and every SQL statement (docs/datasets.md).
"""

from __future__ import annotations

__all__ = ["CollateConfig", "Dataset", "collate", "open_corpus"]

from typing import Any


def __getattr__(name: str) -> Any:  # lazy: importing mechscope.data costs nothing until used
    if name in ("CollateConfig", "collate"):
        from mechscope.data import collate as _collate

        return getattr(_collate, name)
    if name == "Dataset":
        from mechscope.data.store import Dataset

        return Dataset
    if name == "open_corpus":
        from mechscope.data.corpora import open_corpus

        return open_corpus
    raise AttributeError(name)
