"""TransformerLens on mechscope's weights: HookedTransformer (3.x) and the TransformerBridge.

``HookedTransformer`` is TransformerLens' own implementation, built from a
``HookedTransformerConfig`` that matches the model, with the weights copied into its layout
(the inverse of tests/parity/test_transformerlens_parity.py's conversion). The
``TransformerBridge`` (TransformerLens 3.x ships it; 4.x keeps only it) wraps a transformers
model: here transformers' Llama on the same tensors, with the eager attention the bridge
chooses by default (its attention-pattern hooks need it).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from bench import _common
from mechscope.models.decoder import HookedDecoder


def hooked_transformer(model: HookedDecoder, n_ctx: int) -> Any:
    """TransformerLens' ``HookedTransformer`` with ``model``'s weights (a copy, in TL's layout).

    ``n_ctx`` is the longest prompt it will see: TransformerLens keeps an (n_ctx, n_ctx) causal
    mask per layer, 2 GB at SmolLM2's 8192.
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = model.cfg
    tl_cfg = HookedTransformerConfig(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        d_vocab=cfg.d_vocab,
        n_ctx=n_ctx,
        act_fn="silu",
        normalization_type="RMS",
        final_rms=True,
        positional_embedding_type="rotary",
        rotary_dim=cfg.d_head,
        rotary_base=cfg.rope_theta,
        rotary_adjacent_pairs=False,
        gated_mlp=True,
        n_key_value_heads=cfg.n_kv_heads,
        eps=cfg.norm_eps,
        original_architecture="LlamaForCausalLM",
        default_prepend_bos=False,
        init_weights=False,  # every weight is replaced below
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3.x warns that 4.0 drops the class
        tl = HookedTransformer(tl_cfg)
    result = tl.load_state_dict(_to_tl_layout(model), strict=False)
    missing = [
        k for k in result.missing_keys if not k.endswith(("mask", "IGNORE", "rotary_sin", "rotary_cos"))
    ]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"TransformerLens weight map: missing {missing}, unexpected {result.unexpected_keys}"
        )
    tl.requires_grad_(False)
    return tl.eval()


def _to_tl_layout(model: HookedDecoder) -> dict[str, torch.Tensor]:
    cfg, sd = model.cfg, model.state_dict()
    h, kv, dh, d = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
    unemb = sd["embed_tokens.weight"] if cfg.tie_embeddings else sd["lm_head.weight"]
    out = {
        "embed.W_E": sd["embed_tokens.weight"],
        "unembed.W_U": unemb.T,
        "unembed.b_U": torch.zeros(cfg.d_vocab),
        "ln_final.w": sd["ln_final.weight"],
    }
    for i in range(cfg.n_layers):
        p = f"blocks.{i}."
        out[p + "ln1.w"], out[p + "ln2.w"] = sd[p + "ln1.weight"], sd[p + "ln2.weight"]
        # (heads * d_head, d_model) -> (heads, d_model, d_head)
        out[p + "attn.W_Q"] = sd[p + "attn.q_proj.weight"].view(h, dh, d).transpose(1, 2)
        out[p + "attn._W_K"] = sd[p + "attn.k_proj.weight"].view(kv, dh, d).transpose(1, 2)
        out[p + "attn._W_V"] = sd[p + "attn.v_proj.weight"].view(kv, dh, d).transpose(1, 2)
        out[p + "attn.W_O"] = sd[p + "attn.o_proj.weight"].T.reshape(h, dh, d)
        out[p + "attn.b_Q"] = torch.zeros(h, dh)
        out[p + "attn._b_K"] = torch.zeros(kv, dh)
        out[p + "attn._b_V"] = torch.zeros(kv, dh)
        out[p + "attn.b_O"] = torch.zeros(d)
        out[p + "mlp.W_in"] = sd[p + "mlp.up_proj.weight"].T
        out[p + "mlp.W_gate"] = sd[p + "mlp.gate_proj.weight"].T
        out[p + "mlp.W_out"] = sd[p + "mlp.down_proj.weight"].T
        out[p + "mlp.b_in"] = torch.zeros(cfg.d_mlp)
        out[p + "mlp.b_out"] = torch.zeros(d)
    return out


def bridge(model: HookedDecoder, tokenizer: Any) -> Any:
    """TransformerLens' ``TransformerBridge`` around transformers' Llama on ``model``'s tensors."""
    from transformer_lens.model_bridge import TransformerBridge

    hf = _common.hf_llama(model, "eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The name only labels the bridge: with hf_model given, its config is the model's own
        # and nothing is downloaded.
        br = TransformerBridge.boot_transformers(
            "HuggingFaceTB/SmolLM2-135M-Instruct", hf_model=hf, tokenizer=tokenizer, device="cpu"
        )
    br.requires_grad_(False)
    return br.eval()


def last_logits(tl: Any, x: torch.Tensor) -> torch.Tensor:
    """Logits of the last position only, the cheapest way each offers (as mechscope's and
    transformers' gradient workloads do): the bridge passes ``logits_to_keep`` on to
    transformers; HookedTransformer stops after the blocks and unembeds one row itself."""
    if type(tl).__name__ == "TransformerBridge":
        return tl(x, logits_to_keep=1)
    resid = tl(x, stop_at_layer=tl.cfg.n_layers)  # the residual stream after the last block
    return tl.unembed(tl.ln_final(resid[:, -1:]))


def actgrad(tl: Any, x: torch.Tensor, target: int, distractor: int) -> torch.Tensor:
    """Activation x gradient per MLP neuron (summed over positions), (n_layers, d_mlp), through
    TransformerLens hooks on ``blocks.{l}.mlp.hook_post``."""
    n = tl.cfg.n_layers
    acts: dict[int, torch.Tensor] = {}
    grads: dict[int, torch.Tensor] = {}

    def keep(store: dict[int, torch.Tensor], layer: int) -> Any:
        def fn(t: torch.Tensor, hook: Any) -> None:
            store[layer] = t.detach()

        return fn

    def needs_grad(t: torch.Tensor, hook: Any) -> torch.Tensor:
        return t.requires_grad_()  # no weight needs a gradient: start the graph at the embeddings

    names = [f"blocks.{i}.mlp.hook_post" for i in range(n)]
    fwd = [("hook_embed", needs_grad)] + [(nm, keep(acts, i)) for i, nm in enumerate(names)]
    bwd = [(nm, keep(grads, i)) for i, nm in enumerate(names)]
    with torch.enable_grad(), tl.hooks(fwd_hooks=fwd, bwd_hooks=bwd):
        logits = last_logits(tl, x)
        (logits[0, -1, target] - logits[0, -1, distractor]).backward()
    return torch.stack([(acts[i] * grads[i]).sum((0, 1)) for i in range(n)])


def cache_all(tl: Any, x: torch.Tensor) -> Any:
    """``run_with_cache`` of every hook point (TransformerLens' default), logits included."""
    return tl.run_with_cache(x)
