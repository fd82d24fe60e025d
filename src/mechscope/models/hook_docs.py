"""The documented meaning and shape of every hook point: the source of docs/hooks.md.

Tests check real caches against these shapes, so the docs cannot drift from the code.
Regenerate the page with ``python -m mechscope.models.hook_docs > docs/hooks.md``.
"""

from __future__ import annotations

from mechscope.models.hooks import tl_aliases

# name (``{i}`` = layer) -> (shape in glossary dimension names, meaning)
HOOKS: dict[str, tuple[str, str]] = {
    "embed": ("batch pos d_model", "token embeddings (times the embedding scale, Gemma)"),
    "pos_embed": ("batch pos d_model", "learned position embeddings (GPT-2 only)"),
    "blocks.{i}.resid_pre": ("batch pos d_model", "residual stream entering the block"),
    "blocks.{i}.attn_in": (
        "batch pos head d_model",
        "opt-in: one copy of resid_pre per query head; live, each head reads its own copy (and the ln1 "
        "points gain a head dimension)",
    ),
    "blocks.{i}.q_input": ("batch pos head d_model", "opt-in: each query head's input (from attn_in)"),
    "blocks.{i}.k_input": (
        "batch pos kv_head d_model",
        "opt-in: each key head's input (attn_in of its group's first query head)",
    ),
    "blocks.{i}.v_input": ("batch pos kv_head d_model", "opt-in: each value head's input, like k_input"),
    "blocks.{i}.ln1.scale": ("batch pos 1", "divisor sqrt(var + eps) of the attention input norm"),
    "blocks.{i}.ln1.normalized": (
        "batch pos d_model",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "blocks.{i}.ln1.out": ("batch pos d_model", "normalised attention input"),
    "blocks.{i}.attn.q_raw": ("batch pos head d_head", "opt-in: projected queries, before q norm and rotary"),
    "blocks.{i}.attn.k_raw": ("batch pos kv_head d_head", "opt-in: projected keys, before k norm and rotary"),
    "blocks.{i}.attn.q_norm.scale": ("batch pos head 1", "query norm divisor (Gemma 3)"),
    "blocks.{i}.attn.q_norm.normalized": (
        "batch pos head d_head",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "blocks.{i}.attn.q_norm.out": ("batch pos head d_head", "normalised queries, before rotary (Gemma 3)"),
    "blocks.{i}.attn.k_norm.scale": ("batch pos kv_head 1", "key norm divisor (Gemma 3)"),
    "blocks.{i}.attn.k_norm.normalized": (
        "batch pos kv_head d_head",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "blocks.{i}.attn.k_norm.out": ("batch pos kv_head d_head", "normalised keys, before rotary (Gemma 3)"),
    "blocks.{i}.attn.q": ("batch pos head d_head", "queries, after rotary"),
    "blocks.{i}.attn.k": (
        "batch pos kv_head d_head",
        "keys, after rotary (new positions only when KV-cached)",
    ),
    "blocks.{i}.attn.v": ("batch pos kv_head d_head", "values"),
    "blocks.{i}.attn.scores": (
        "batch head pos kv_pos",
        "scaled, soft-capped and masked (-inf) scores, pre-softmax",
    ),
    "blocks.{i}.attn.pattern": ("batch head pos kv_pos", "attention probabilities"),
    "blocks.{i}.attn.z": (
        "batch pos head d_head",
        "per-head weighted values (input of the output projection)",
    ),
    "blocks.{i}.attn.result": (
        "batch pos head d_model",
        "per-head output written to the residual, bias excluded; opt-in: not cached by default",
    ),
    "blocks.{i}.ln1_post.scale": ("batch pos 1", "divisor of the post-attention norm (Gemma sandwich norms)"),
    "blocks.{i}.ln1_post.normalized": (
        "batch pos d_model",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "blocks.{i}.ln1_post.out": ("batch pos d_model", "normalised attention output (Gemma)"),
    "blocks.{i}.attn_out": ("batch pos d_model", "attention's write to the residual stream"),
    "blocks.{i}.resid_mid": ("batch pos d_model", "residual after attention (absent with parallel residual)"),
    "blocks.{i}.mlp_in": ("batch pos d_model", "opt-in: the MLP's own copy of its input (resid_mid)"),
    "blocks.{i}.ln2.scale": ("batch pos 1", "divisor of the MLP input norm"),
    "blocks.{i}.ln2.normalized": (
        "batch pos d_model",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "blocks.{i}.ln2.out": ("batch pos d_model", "normalised MLP input"),
    "blocks.{i}.mlp.pre": ("batch pos d_mlp", "input of the nonlinearity (gate branch of a gated MLP)"),
    "blocks.{i}.mlp.gate": ("batch pos d_mlp", "act(pre), the gate (gated MLPs)"),
    "blocks.{i}.mlp.linear": ("batch pos d_mlp", "the linear (up) branch (gated MLPs)"),
    "blocks.{i}.mlp.post": ("batch pos d_mlp", "neuron activations: input of the down projection"),
    "blocks.{i}.ln2_post.scale": ("batch pos 1", "divisor of the post-MLP norm (Gemma)"),
    "blocks.{i}.ln2_post.normalized": (
        "batch pos d_model",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "blocks.{i}.ln2_post.out": ("batch pos d_model", "normalised MLP output (Gemma)"),
    "blocks.{i}.mlp_out": ("batch pos d_model", "the MLP's write to the residual stream"),
    "blocks.{i}.resid_post": ("batch pos d_model", "residual stream leaving the block"),
    "ln_final.scale": ("batch pos 1", "divisor of the final norm"),
    "ln_final.normalized": (
        "batch pos d_model",
        "opt-in: x / scale (mean-centred first for LayerNorm), before weight and bias",
    ),
    "ln_final.out": ("batch pos d_model", "normalised final residual"),
    "logits": ("batch pos d_vocab", "output logits (soft-capped where the model does)"),
}


def doc_key(name: str) -> str:
    """``blocks.3.mlp.post`` -> ``blocks.{i}.mlp.post``."""
    parts = name.split(".")
    if parts[0] == "blocks" and len(parts) > 2:
        return ".".join(["blocks", "{i}", *parts[2:]])
    return name


def markdown() -> str:
    inverse: dict[str, list[str]] = {}
    for alias, name in tl_aliases().items():
        inverse.setdefault(name, []).append(alias)
    lines = [
        "# Hook points",
        "",
        "<!-- generated by `python -m mechscope.models.hook_docs > docs/hooks.md`; a test keeps it current -->",
        "",
        "Every activation of the decoder has a hook point. Its name is its module path; the names",
        "are an API and change only with a documented breaking change. Forward hooks read or",
        "replace the activation, backward hooks read or replace its gradient; both have the",
        "signature `fn(tensor, hook) -> tensor | None`. Dimension names are in",
        "[glossary.md](glossary.md). TransformerLens names are accepted as aliases.",
        "",
        "| name | shape | meaning | TransformerLens alias |",
        "| --- | --- | --- | --- |",
    ]
    for name, (shape, meaning) in HOOKS.items():
        aliases = ", ".join(f"`{a}`" for a in inverse.get(name, []))
        lines.append(f"| `{name}` | ({', '.join(shape.split())}) | {meaning} | {aliases} |")
    lines += [
        "",
        "Points that a family lacks are absent, not dead: `pos_embed` exists only with learned",
        "positions, `resid_mid` only without parallel residual, `ln1_post`/`ln2_post` and",
        "`attn.q_norm`/`attn.k_norm` only for Gemma 3, `mlp.gate`/`mlp.linear` only for gated MLPs.",
        "",
        "As in TransformerLens, `attn.hook_q`/`attn.hook_k` are the projections (`attn.q_raw`,",
        "`attn.k_raw`: before the q/k norms and rotary) and `attn.hook_rot_q`/`attn.hook_rot_k` are",
        "after rotary (`attn.q`, `attn.k`; the same tensor for GPT-2, which has no rotary).",
        "",
        "Opt-in points (`attn.result`, `attn_in`, `q_input`/`k_input`/`v_input`, `mlp_in`,",
        "`attn.q_raw`/`attn.k_raw`) are left out when a cache is asked for every default point",
        "(`names=None`) and included when named, globbed or selected by a predicate. TransformerLens",
        "sets flags (`use_attn_in`, `use_split_qkv_input`, `use_hook_mlp_in`) for the same points;",
        "here attaching a hook is the flag. While one of `attn_in`/`q_input`/`k_input`/`v_input` is",
        "live, that layer's heads read their own copies, so `ln1.scale`/`ln1.out` gain a head",
        "dimension and fire once for each of q, k and v, as in TransformerLens.",
        "",
        "Gradients: `run_with_cache(..., incl_bwd=True)` also runs backward (of the mean next-token",
        "loss, or of `metric(logits)`) and stores the gradient at each selected point as",
        '`{name}_grad`; TransformerLens spellings work (`cache["blocks.3.hook_mlp_out_grad"]`).',
        "TransformerLens' keywords are accepted too: `run_with_hooks(fwd_hooks=..., bwd_hooks=...)`,",
        "`run_with_cache(names_filter=...)`.",
        "",
        "When a hook is attached to `attn.scores` or `attn.pattern`, that layer computes attention",
        "explicitly; otherwise it uses the fused `scaled_dot_product_attention` kernel. Both give",
        "the same result to float rounding (tested).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
