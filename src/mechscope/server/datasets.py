"""The collated dataset behind the node pages: a folder that may still be being written.

``mechscope demo`` starts the collation of a default slice in a background process (lower CPU
priority, its own copy of the model, so the debugger's hooks and its never mix); node pages show
its progress and fill in as previews (after 1, 2, 4, ... shards) and then the dataset land.
Killing the server leaves finished shards on disk, and the next start resumes from them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.explain.llm import LLM
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.background_explain import BackgroundExplainer

log = logging.getLogger("mechscope.server")

DEMO_TOKENS = 100_000  # the demo's default slice of the default corpus (~5 min on 2 cores)


class DatasetSource:
    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._dataset: Dataset | None = None
        self._lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.explainer: BackgroundExplainer | None = None

    def working(self) -> bool:
        """Is its background work (the collation process, the explanations) running now?"""
        collating = self.process is not None and self.process.poll() is None
        return collating or (self.explainer is not None and self.explainer.working)

    def progress(self) -> dict[str, object]:
        if self.root is None:
            return {"status": "none", "fraction": 0.0, "tokens_done": 0, "tokens_total": 0}
        from mechscope.data.store import Dataset

        p = dict(Dataset(self.root).progress())
        if p["status"] != "done" and self.process is not None and self.process.poll() is not None:
            p["status"] = "failed" if self.process.returncode else p["status"]
        return p

    def dataset(self) -> Dataset | None:
        """The dataset to read: the finished one or, while it is collated with previews, the newest
        preview (:class:`Dataset` moves to newer files by itself); None while there is neither."""
        if self.root is None:
            return None
        with self._lock:
            if self._dataset is None:
                from mechscope.data.store import Dataset

                self._dataset = Dataset(self.root)
            if self._dataset.progress()["status"] != "done" and not self._dataset.is_preview:
                return None
            return self._dataset

    def collate_in_background(self, tokens: int = DEMO_TOKENS, dictionaries: list[str] | None = None) -> None:
        """Start (or resume) collating the default corpus into ``root`` with the default model, and
        the latents of ``dictionaries`` (``--sae`` folders) attached to it."""
        assert self.root is not None
        if self.progress()["status"] == "done":
            return
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "mechscope",
            "collate",
            "--tokens",
            str(tokens),
            "--out",
            str(self.root),
            "--preview",  # node pages fill in while it runs
            "--quiet",
        ]
        for ref in dictionaries or []:
            cmd += ["--sae", ref]
        logf = open(self.root.parent / f"{self.root.name}.log", "ab")  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(10), start_new_session=True
        )
        log.info(
            "collating %d tokens of the default corpus into %s (pid %d)", tokens, self.root, self.process.pid
        )

    def explain_when_collated(self, model: HookedDecoder, llm: Callable[[], LLM] | None = None) -> None:
        """Give the units baseline explanations in the background once the collation is done, then
        with ``llm`` (it loads the LLM) the LLM's (server/background_explain.py); ``model`` must be
        the one the dataset is collated with."""
        from mechscope.server.background_explain import BackgroundExplainer

        self.explainer = BackgroundExplainer(self, model, llm=llm)
        self.explainer.start()

    def close(self) -> None:
        if self.explainer is not None:
            self.explainer.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # finished shards stay; the next start resumes
        if self._dataset is not None:
            self._dataset.close()
