"""GPT-2: LayerNorm, learned positions, fused QKV, GELU (tanh) MLP, tied unembedding.

HF stores GPT-2's projections as ``Conv1D`` with (in, out) weights: they are transposed here.
"""

from __future__ import annotations

from mechscope.errors import UnsupportedArchitectureError
from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict

_ACTS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def config(hf: HFConfig) -> ModelConfig:
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if hf.get(flag):
            raise UnsupportedArchitectureError(f"config.json: GPT-2 option {flag}=true is not supported")
    if hf.get("scale_attn_weights") is False:
        raise UnsupportedArchitectureError(
            "config.json: GPT-2 option scale_attn_weights=false is not supported"
        )
    d, heads = hf["n_embd"], hf["n_head"]
    eos = hf.get("eos_token_id")
    return ModelConfig(
        architecture="gpt2",
        d_model=d,
        n_layers=hf["n_layer"],
        n_heads=heads,
        d_head=d // heads,
        d_mlp=hf.get("n_inner") or 4 * d,
        d_vocab=hf["vocab_size"],
        n_ctx=hf["n_positions"],
        norm="layernorm",
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        act=_ACTS[hf.get("activation_function", "gelu_new")],  # type: ignore[arg-type]
        gated_mlp=False,
        positional="learned",
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        eos_token_ids=(eos,) if isinstance(eos, int) else (),
        name=hf.get("_name_or_path", "") or "gpt2",
    )


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    sd = {k.removeprefix("transformer."): v for k, v in sd.items()}
    d = cfg.d_model
    out: StateDict = {}
    for name, t in sd.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # causal-mask buffers of old checkpoints
        if name == "wte.weight":
            out["embed_tokens.weight"] = t
        elif name == "wpe.weight":
            out["embed_positions.weight"] = t
        elif name.startswith("ln_f."):
            out["ln_final." + name.split(".", 1)[1]] = t
        elif name == "lm_head.weight":
            if not cfg.tie_embeddings:
                out["lm_head.weight"] = t
        elif name.startswith("h."):
            _, i, rest = name.split(".", 2)
            p = f"blocks.{i}."
            if rest.startswith(("ln_1.", "ln_2.")):
                out[p + rest.replace("ln_1", "ln1").replace("ln_2", "ln2")] = t
            elif rest.startswith("attn.c_attn."):
                kind = rest.rsplit(".", 1)[1]
                parts = (t.T if kind == "weight" else t).split(d, dim=0)  # Conv1D (in, 3d) -> 3 x (d, in)
                for proj, part in zip("qkv", parts, strict=True):
                    out[p + f"attn.{proj}_proj.{kind}"] = part.contiguous()
            else:
                ours = {
                    "attn.c_proj": "attn.o_proj",
                    "mlp.c_fc": "mlp.up_proj",
                    "mlp.c_proj": "mlp.down_proj",
                }
                mod, kind = rest.rsplit(".", 1)
                if mod not in ours:
                    out[name] = t
                    continue
                out[p + f"{ours[mod]}.{kind}"] = t.T.contiguous() if kind == "weight" else t
        else:
            out[name] = t
    return out


FAMILY = Family("gpt2", ("gpt2",), config, weights)
