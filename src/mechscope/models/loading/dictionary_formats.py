"""Dictionary files in and out: mechscope's own folder, SAELens, sparsify and OpenAI's
sparse_autoencoder, each with that format's real file and tensor names.

- **mechscope**: ``dictionary.json`` (config, training statistics, evaluation) and
  ``weights.safetensors`` (``W_enc``, ``b_enc``, ``W_dec``, ``b_dec``, ``threshold``,
  ``scale_in``, ``scale_out``, optional ``W_skip``).
- **SAELens** (v6): ``cfg.json`` and ``sae_weights.safetensors`` with ``W_enc`` [d_in, d_sae],
  ``W_dec`` [d_sae, d_in], ``b_enc``, ``b_dec`` and, for JumpReLU, ``threshold``; skip
  transcoders add ``W_skip`` [d_out, d_in]. Written with ``normalize_activations: none`` and the
  scale folded into the weights.
- **sparsify**: ``cfg.json`` (SparseCoderConfig plus ``d_in``) and ``sae.safetensors`` with
  ``encoder.weight`` [n, d_in], ``encoder.bias``, ``W_dec`` [n, d_out], ``b_dec`` and, with a
  skip connection, ``W_skip`` [d_out, d_in]. TopK only.
- **circuit-tracer** (safety-research/circuit-tracer, ``SingleLayerTranscoder.to_safetensors``
  and ``load_transcoder``): one ``layer_{L}.safetensors`` per layer with ``W_enc`` [n, d_in]
  (applied as ``F.linear(x, W_enc, b_enc)``), ``W_dec`` [n, d_out], ``b_enc``, ``b_dec`` and,
  per activation, ``activation_function.threshold`` [n] (JumpReLU) or a scalar ``k`` (TopK; ReLU
  when neither), and ``W_skip`` [d_out, d_in] (applied as ``x @ W_skip.T``). Its transcoders read
  the MLP's input and write its output: layer L's file is read as ``blocks.L.mlp``.
- **OpenAI** sparse_autoencoder: a ``torch.save``d state dict with ``pre_bias`` [d],
  ``encoder.weight`` [n, d], ``latent_bias`` [n], ``decoder.weight`` [d, n], read with
  ``weights_only=True``. ReLU dictionaries only: OpenAI's TopK ones layer-norm each input token,
  which is not a fixed linear scale (refused with that reason).

Every loader checks the sizes the config declares against the tensors and raises
:class:`~mechscope.errors.ModelLoadError` naming the file and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mechscope.errors import InputError, ModelLoadError
from mechscope.models.dictionaries.coder import SparseCoder
from mechscope.models.dictionaries.config import DictionaryConfig
from mechscope.models.dictionaries.points import mlp_points
from mechscope.models.hooks import canonical_name, tl_aliases
from mechscope.models.loading.hf import read_json_object

NATIVE_CONFIG, NATIVE_WEIGHTS = "dictionary.json", "weights.safetensors"
SAELENS_CONFIG, SAELENS_WEIGHTS = "cfg.json", "sae_weights.safetensors"
SPARSIFY_CONFIG, SPARSIFY_WEIGHTS = "cfg.json", "sae.safetensors"
CIRCUIT_TRACER_FILE = "layer_{layer}.safetensors"
CIRCUIT_TRACER_CONFIG = "config.yaml"
FORMATS = ("mechscope", "saelens", "sparsify", "circuit-tracer", "openai")


# ----- helpers ----------------------------------------------------------------------------------
def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated files
        raise ModelLoadError(f"{path}: not a readable safetensors file ({e})") from None


def _field(cfg: dict[str, Any], key: str, path: Path, kind: type = int) -> Any:
    if key not in cfg:
        raise ModelLoadError(f"{path}: missing field {key!r}")
    value = cfg[key]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ModelLoadError(f"{path}: field {key!r} must be a positive integer, got {value!r}")
    return value


def _tensor(t: dict[str, torch.Tensor], key: str, shape: tuple[int, ...], path: Path) -> torch.Tensor:
    if key not in t:
        raise ModelLoadError(f"{path}: missing tensor {key!r} (has {sorted(t)})")
    if tuple(t[key].shape) != shape:
        raise ModelLoadError(
            f"{path}: tensor {key!r} has shape {tuple(t[key].shape)}; the config declares {shape}"
        )
    return t[key].float()


def _config(path: Path, **fields: Any) -> DictionaryConfig:
    """The config a file declares, its inconsistencies reported against the file."""
    try:
        return DictionaryConfig(**fields)
    except InputError as e:
        raise ModelLoadError(f"{path}: {e}") from None


def _fill(coder: SparseCoder, **tensors: torch.Tensor | None) -> SparseCoder:
    with torch.no_grad():
        for name, value in tensors.items():
            if value is not None:
                getattr(coder, name).copy_(value)
    return coder.eval()


def _tl_name(hook: str) -> str:
    """mechscope's hook name as TransformerLens spells it (SAELens's ``hook_name``)."""
    for alias, ours in tl_aliases().items():
        if "{i}" in alias and hook.startswith("blocks."):
            layer = hook.split(".")[1]
            if ours.replace("{i}", layer) == hook:
                return alias.replace("{i}", layer)
        elif ours == hook:
            return alias
    return hook


# ----- mechscope --------------------------------------------------------------------------------
def save_dictionary(coder: SparseCoder, folder: Path, evaluation: dict[str, Any] | None = None) -> Path:
    """Write ``coder`` (and its evaluation, when given) in mechscope's format; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().contiguous() for k, v in coder.state_dict().items()}
    save_file(tensors, str(folder / NATIVE_WEIGHTS))
    meta = {"format": "mechscope-dictionary", "version": 1, "config": coder.cfg.to_dict(),
            "training": coder.training_stats, "eval": evaluation}  # fmt: skip
    (folder / NATIVE_CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def load_native(folder: Path) -> SparseCoder:
    path = folder / NATIVE_CONFIG
    meta = read_json_object(path)
    try:
        cfg = DictionaryConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError, InputError) as e:
        raise ModelLoadError(f"{path}: bad field 'config' ({e})") from None
    coder = SparseCoder(cfg)
    wpath = folder / NATIVE_WEIGHTS
    t = _read_tensors(wpath)
    for name, p in coder.state_dict().items():
        _tensor(t, name, tuple(p.shape), wpath)
    coder.load_state_dict({k: t[k].float() for k in coder.state_dict()})
    coder.training_stats = dict(meta.get("training") or {})
    return coder.eval()


def read_evaluation(folder: Path) -> dict[str, Any] | None:
    return read_json_object(folder / NATIVE_CONFIG).get("eval")


# ----- SAELens ----------------------------------------------------------------------------------
_SAELENS_ARCH = {"topk": "topk", "batchtopk": "jumprelu", "jumprelu": "jumprelu", "relu": "standard"}


def save_saelens(coder: SparseCoder, folder: Path) -> Path:
    c = coder.cfg
    folder.mkdir(parents=True, exist_ok=True)
    w = coder.folded()
    out = {"W_enc": w["W_enc"], "W_dec": w["W_dec"], "b_enc": w["b_enc"], "b_dec": w["b_dec"]}
    arch = _SAELENS_ARCH[c.activation]
    if arch == "jumprelu":
        out["threshold"] = w["threshold"]
    if "W_skip" in w:
        out["W_skip"] = w["W_skip"].T  # SAELens: [d_out, d_in]
    save_file({k: v.float().contiguous() for k, v in out.items()}, str(folder / SAELENS_WEIGHTS))
    cfg: dict[str, Any] = {
        "architecture": arch,
        "d_in": c.d_in,
        "d_sae": c.n_latents,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": c.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "hook_z" if c.hook.endswith("attn.z") else "none",
        "metadata": {"model_name": c.model, "hook_name": _tl_name(c.hook), "hook_head_index": None},
    }
    if arch == "topk":
        cfg.update(k=c.k, rescale_acts_by_decoder_norm=False)
    if c.kind != "sae":
        cfg["d_out"] = c.width_out
        cfg["metadata"]["hook_name_out"] = _tl_name(c.out_hook or c.hook)
    (folder / SAELENS_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
    return folder


def load_saelens(folder: Path, hook: str | None = None) -> SparseCoder:
    path = folder / SAELENS_CONFIG
    cfg = read_json_object(path)
    arch = cfg.get("architecture", "standard")
    acts = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}
    if arch not in acts:
        raise ModelLoadError(f"{path}: field 'architecture' is {arch!r}; supported: {', '.join(acts)}")
    norm = cfg.get("normalize_activations", "none")
    if norm not in ("none", None):
        raise ModelLoadError(f"{path}: field 'normalize_activations' is {norm!r}; only 'none' is supported")
    d_in, n = _field(cfg, "d_in", path), _field(cfg, "d_sae", path)
    meta = cfg.get("metadata") or {}
    name = hook or meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
    if not name:
        raise ModelLoadError(f"{path}: no 'metadata.hook_name'; pass the hook point explicitly")
    d_out = cfg.get("d_out")
    t = _read_tensors(folder / SAELENS_WEIGHTS)
    skip = "W_skip" in t
    kind = "skip_transcoder" if skip else ("transcoder" if d_out is not None else "sae")
    dc = _config(
        path, d_in=d_in, n_latents=n, hook=canonical_name(str(name)), activation=acts[arch],
        k=cfg.get("k") if arch == "topk" else None, kind=kind, d_out=d_out,
        out_hook=canonical_name(str(meta.get("hook_name_out") or name)) if kind != "sae" else None,
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", kind == "sae")) and kind == "sae",
        model=str(meta.get("model_name") or ""),
    )  # fmt: skip
    w, o = folder / SAELENS_WEIGHTS, dc.width_out
    return _fill(
        SparseCoder(dc),
        W_enc=_tensor(t, "W_enc", (d_in, n), w),
        W_dec=_tensor(t, "W_dec", (n, o), w),
        b_enc=_tensor(t, "b_enc", (n,), w),
        b_dec=_tensor(t, "b_dec", (o,), w),
        threshold=_tensor(t, "threshold", (n,), w) if arch == "jumprelu" else None,
        W_skip=_tensor(t, "W_skip", (o, d_in), w).T if skip else None,
    )


# ----- sparsify ---------------------------------------------------------------------------------
def sparsify_hookpoint(hook: str) -> str:
    """sparsify names hookpoints by Hugging Face module path: ``layers.6`` is block 6's output."""
    parts = hook.split(".")
    if len(parts) == 3 and parts[0] == "blocks":
        return {"resid_post": f"layers.{parts[1]}", "mlp_out": f"layers.{parts[1]}.mlp"}.get(parts[2], hook)
    return hook


def _from_sparsify_hookpoint(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "layers" and len(parts) >= 2 and parts[1].isdigit():
        if len(parts) == 2:
            return f"blocks.{parts[1]}.resid_post"
        if parts[2:] == ["mlp"]:
            return f"blocks.{parts[1]}.mlp_out"
    return name


def _transcoder_points(name: str) -> tuple[str, str]:
    """A transcoder's (input, output) points from the name a file gives its MLP: ``blocks.L.mlp``,
    sparsify's ``layers.L.mlp`` (read above as ``blocks.L.mlp_out``); any other name is kept for
    both, as the file says."""
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] in ("mlp", "mlp_out"):
        return mlp_points(f"blocks.{parts[1]}.mlp")
    return name, name


def save_sparsify(coder: SparseCoder, folder: Path) -> Path:
    c = coder.cfg
    if c.activation != "topk":
        raise ModelLoadError(f"sparsify stores TopK dictionaries only; this one is {c.activation}")
    folder.mkdir(parents=True, exist_ok=True)
    w = coder.folded()
    out = {
        "encoder.weight": w["W_enc"].T,
        "encoder.bias": w["b_enc"],
        "W_dec": w["W_dec"],
        "b_dec": w["b_dec"],
    }
    if "W_skip" in w:
        out["W_skip"] = w["W_skip"].T
    save_file({k: v.float().contiguous() for k, v in out.items()}, str(folder / SPARSIFY_WEIGHTS))
    cfg = {"activation": "topk", "expansion_factor": max(1, c.n_latents // c.d_in), "normalize_decoder": True,
           "num_latents": c.n_latents, "k": c.k, "multi_topk": False, "skip_connection": c.kind == "skip_transcoder",
           "transcode": c.kind != "sae", "d_in": c.d_in}  # fmt: skip
    (folder / SPARSIFY_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
    return folder


def load_sparsify(folder: Path, hook: str | None = None) -> SparseCoder:
    path = folder / SPARSIFY_CONFIG
    cfg = read_json_object(path)
    if cfg.get("activation", "topk") != "topk":
        raise ModelLoadError(f"{path}: field 'activation' is {cfg['activation']!r}; supported: topk")
    d_in, k = _field(cfg, "d_in", path), _field(cfg, "k", path)
    w = folder / SPARSIFY_WEIGHTS
    t = _read_tensors(w)
    n = cfg.get("num_latents") or d_in * _field(cfg, "expansion_factor", path)
    transcode, skip = bool(cfg.get("transcode")), bool(cfg.get("skip_connection"))
    d_out = int(t["W_dec"].shape[1]) if "W_dec" in t and transcode else d_in
    kind = "skip_transcoder" if skip else ("transcoder" if transcode else "sae")
    name = hook or _from_sparsify_hookpoint(folder.name)
    in_hook, out_hook = _transcoder_points(name) if transcode else (name, None)
    dc = _config(path, d_in=d_in, n_latents=n, hook=in_hook, activation="topk", k=k, kind=kind,
                 d_out=d_out if transcode else None, out_hook=out_hook, apply_b_dec_to_input=not transcode)  # fmt: skip
    return _fill(
        SparseCoder(dc),
        W_enc=_tensor(t, "encoder.weight", (n, d_in), w).T,
        b_enc=_tensor(t, "encoder.bias", (n,), w),
        W_dec=_tensor(t, "W_dec", (n, d_out), w),
        b_dec=_tensor(t, "b_dec", (d_out,), w),
        W_skip=_tensor(t, "W_skip", (d_out, d_in), w).T if skip else None,
    )


# ----- circuit-tracer ---------------------------------------------------------------------------
def save_circuit_tracer(coder: SparseCoder, folder: Path) -> Path:
    """A transcoder as circuit-tracer's ``layer_{L}.safetensors`` (scales folded); returns the file."""
    c = coder.cfg
    if c.kind == "sae" or not c.hook.startswith("blocks."):
        raise ModelLoadError("circuit-tracer's files hold per-layer MLP transcoders only")
    w = coder.folded()
    out = {"W_enc": w["W_enc"].T, "W_dec": w["W_dec"], "b_enc": w["b_enc"], "b_dec": w["b_dec"]}
    if coder.activation == "jumprelu":
        out["activation_function.threshold"] = w["threshold"]
    elif c.activation == "topk":
        out["k"] = torch.tensor(c.k)
    if "W_skip" in w:
        out["W_skip"] = w["W_skip"].T  # applied as x @ W_skip.T
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CIRCUIT_TRACER_FILE.format(layer=c.hook.split(".")[1])
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    return path


def load_circuit_tracer(path: Path, hook: str | None = None) -> SparseCoder:
    """A circuit-tracer transcoder file; ``hook`` (``blocks.L.mlp``) defaults to the layer in its
    name, ``layer_{L}.safetensors``."""
    t = _read_tensors(path)
    stem = path.name.removesuffix(".safetensors")
    if hook is None:
        layer = stem.removeprefix("layer_")
        if not (stem.startswith("layer_") and layer.isdigit()):
            raise ModelLoadError(f"{path}: the file name gives no layer (layer_L.safetensors); pass the hook")
        hook = f"blocks.{layer}.mlp"
    for key in ("W_enc", "b_enc", "b_dec"):
        if key not in t:
            raise ModelLoadError(f"{path}: missing tensor {key!r} (has {sorted(t)})")
    n, d_out = int(t["b_enc"].shape[0]), int(t["b_dec"].shape[0])
    if t["W_enc"].dim() != 2 or t["W_enc"].shape[0] != n:
        raise ModelLoadError(
            f"{path}: tensor 'W_enc' has shape {tuple(t['W_enc'].shape)}; expected [{n}, d_in]"
        )
    d_in = int(t["W_enc"].shape[1])
    activation = "jumprelu" if "activation_function.threshold" in t else ("topk" if "k" in t else "relu")
    skip = "W_skip" in t
    in_hook, out_hook = _transcoder_points(canonical_name(hook))
    dc = _config(path, d_in=d_in, n_latents=n, hook=in_hook, activation=activation,
                 k=int(t["k"]) if activation == "topk" else None, kind="skip_transcoder" if skip else "transcoder",
                 d_out=d_out, out_hook=out_hook, apply_b_dec_to_input=False)  # fmt: skip
    return _fill(
        SparseCoder(dc),
        W_enc=_tensor(t, "W_enc", (n, d_in), path).T,
        W_dec=_tensor(t, "W_dec", (n, d_out), path),
        b_enc=_tensor(t, "b_enc", (n,), path),
        b_dec=_tensor(t, "b_dec", (d_out,), path),
        threshold=_tensor(t, "activation_function.threshold", (n,), path)
        if activation == "jumprelu"
        else None,
        W_skip=_tensor(t, "W_skip", (d_out, d_in), path).T if skip else None,
    )


def circuit_tracer_layers(folder: Path) -> list[Path]:
    """The ``layer_{L}.safetensors`` files of a circuit-tracer transcoder folder, by layer."""
    found = [
        (p.name.removeprefix("layer_").removesuffix(".safetensors"), p)
        for p in folder.glob("layer_*.safetensors")
    ]
    return [p for layer, p in sorted((int(n), p) for n, p in found if n.isdigit())]


def write_circuit_tracer_config(folder: Path, model_name: str, files: dict[int, Path]) -> Path:
    """circuit-tracer's ``config.yaml`` for a folder of per-layer transcoders (``load_transcoder_set``
    reads ``model_name``, ``feature_input_hook``, ``feature_output_hook`` and ``transcoders``:
    ``id``, ``layer``, ``filepath``). Our transcoders read the normalised MLP input and write the
    MLP's output: TransformerLens's ``ln2.hook_normalized`` and ``hook_mlp_out``, as its Gemma
    Scope config names them. Written as JSON, which YAML 1.2 parsers (``yaml.safe_load``) read."""
    stem = model_name.rsplit("/", 1)[-1] or "model"
    cfg = {
        "model_name": model_name,
        "feature_input_hook": "ln2.hook_normalized",
        "feature_output_hook": "hook_mlp_out",
        "transcoders": [
            {"id": f"{stem}-mechscope-{layer}", "layer": layer, "filepath": str(path.resolve())}
            for layer, path in sorted(files.items())
        ],
    }
    path = folder / CIRCUIT_TRACER_CONFIG
    path.write_text(
        "# circuit-tracer transcoder set, written by mechscope\n" + json.dumps(cfg, indent=2) + "\n"
    )
    return path


# ----- OpenAI sparse_autoencoder ----------------------------------------------------------------
def load_openai(path: Path, hook: str) -> SparseCoder:
    """An OpenAI ``sparse_autoencoder`` state dict (ReLU; see the module docstring for TopK)."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    except Exception as e:
        raise ModelLoadError(f"{path}: not a weights-only torch state dict ({e})") from None
    if not isinstance(sd, dict):
        raise ModelLoadError(f"{path}: expected a state dict, got {type(sd).__name__}")
    act = sd.get("activation", "ReLU")
    if act != "ReLU":
        raise ModelLoadError(
            f"{path}: field 'activation' is {act!r}; only ReLU is supported (OpenAI's TopK dictionaries "
            "layer-norm each token's input, which a fixed input scale cannot represent)"
        )
    if "encoder.weight" not in sd:
        raise ModelLoadError(f"{path}: missing tensor 'encoder.weight' (has {sorted(sd)})")
    n, d = (int(s) for s in sd["encoder.weight"].shape)
    dc = _config(path, d_in=d, n_latents=n, hook=hook, activation="relu", k=None)
    return _fill(
        SparseCoder(dc),
        W_enc=_tensor(sd, "encoder.weight", (n, d), path).T,
        b_enc=_tensor(sd, "latent_bias", (n,), path),
        W_dec=_tensor(sd, "decoder.weight", (d, n), path).T,
        b_dec=_tensor(sd, "pre_bias", (d,), path),
    )


def save_openai(coder: SparseCoder, path: Path) -> Path:
    """A ReLU SAE as OpenAI's state dict (for round trips and for their viewer's loaders)."""
    if coder.cfg.activation != "relu" or coder.cfg.kind != "sae":
        raise ModelLoadError("OpenAI's ReLU format holds ReLU SAEs only")
    w = coder.folded()
    sd = {"pre_bias": w["b_dec"], "encoder.weight": w["W_enc"].T.contiguous(), "latent_bias": w["b_enc"],
          "decoder.weight": w["W_dec"].T.contiguous(), "activation": "ReLU"}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


# ----- any ----------------------------------------------------------------------------------------
def save_as(coder: SparseCoder, fmt: str, dest: Path) -> Path:
    """Write ``coder`` in format ``fmt`` (one of :data:`FORMATS`): into the folder ``dest``, or, for
    OpenAI's single-file format, to ``dest/<hook>.pt``. Returns what was written."""
    if fmt == "mechscope":
        return save_dictionary(coder, dest)
    if fmt == "saelens":
        return save_saelens(coder, dest)
    if fmt == "sparsify":
        return save_sparsify(coder, dest)
    if fmt == "circuit-tracer":
        return save_circuit_tracer(coder, dest)
    if fmt == "openai":
        return save_openai(coder, dest / f"{coder.cfg.hook}.pt")
    raise InputError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")


def load_any(path: str | Path, hook: str | None = None) -> SparseCoder:
    """Load a dictionary, telling the format from the files: a mechscope folder, a SAELens or
    sparsify folder, a circuit-tracer ``.safetensors`` file, or an OpenAI ``.pt`` state dict
    (which needs ``hook``)."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".safetensors":
        return load_circuit_tracer(p, hook)
    if p.is_file() and p.suffix == ".pt":
        if hook is None and p.stem.startswith("blocks."):
            hook = p.stem  # as save_as names them: <hook>.pt
        if hook is None:
            raise ModelLoadError(
                f"{p}: an OpenAI state dict does not name its hook point; pass one (or name the file <hook>.pt)"
            )
        return load_openai(p, hook)
    if (p / NATIVE_CONFIG).is_file():
        return load_native(p)
    if (p / SAELENS_WEIGHTS).is_file():
        return load_saelens(p, hook)
    if (p / SPARSIFY_WEIGHTS).is_file():
        return load_sparsify(p, hook)
    raise ModelLoadError(
        f"{p}: not a dictionary; expected a folder with {NATIVE_CONFIG} (mechscope), {SAELENS_WEIGHTS} "
        f"(SAELens) or {SPARSIFY_WEIGHTS} (sparsify), a circuit-tracer layer_L.safetensors file, "
        "or an OpenAI .pt state dict"
    )
