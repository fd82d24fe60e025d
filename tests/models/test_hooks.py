from __future__ import annotations

import pytest
import torch

from mechscope.errors import HookError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hook_docs import HOOKS, doc_key
from mechscope.models.hooks import HookPoint
from tests.conftest import tiny_model

PROMPT = "When Mary and John went"


def expected_shapes(model: HookedDecoder, b: int, t: int) -> dict[str, tuple[int, ...]]:
    """The shape docs/hooks.md documents for every hook point of the model, for a (b, t) input."""
    c = model.cfg
    dims = {
        "batch": b,
        "pos": t,
        "kv_pos": t,
        "head": c.n_heads,
        "kv_head": c.n_kv_heads,
        "d_head": c.d_head,
        "d_model": c.d_model,
        "d_mlp": c.d_mlp,
        "d_vocab": c.d_vocab,
        "1": 1,
    }
    return {n: tuple(dims[d] for d in HOOKS[doc_key(n)][0].split()) for n in model.hook_names()}


PER_HEAD_INPUTS = ("attn_in", "q_input", "k_input", "v_input")


def test_cache_holds_every_documented_name_with_its_shape(model: HookedDecoder) -> None:
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 7))
    _, cache = model.run_with_cache(tokens, names=lambda n: not n.endswith(PER_HEAD_INPUTS))
    shapes = expected_shapes(model, 2, 7)
    assert set(cache) == {n for n in model.hook_names() if not n.endswith(PER_HEAD_INPUTS)}
    for name, tensor in cache.items():
        assert tuple(tensor.shape) == shapes[name], name
    # Live per-head inputs give ln1 a head dimension (as TransformerLens' split inputs do).
    _, cache = model.run_with_cache(tokens, names=lambda n: n.endswith(PER_HEAD_INPUTS))
    assert len(cache) == 4 * model.cfg.n_layers
    for name, tensor in cache.items():
        assert tuple(tensor.shape) == shapes[name], name


def test_per_head_inputs_leave_the_output_unchanged_and_patch_one_head(model: HookedDecoder) -> None:
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 6))
    plain, ref = model.run_with_cache(
        tokens, names=["blocks.1.attn.z", "blocks.1.attn.q", "blocks.1.mlp.post"]
    )
    mid = "blocks.1.resid_pre" if model.cfg.parallel_residual else "blocks.1.resid_mid"
    split, cache = model.run_with_cache(
        tokens, names=["blocks.1.attn_in", "blocks.1.attn.z", "blocks.1.mlp_in", "blocks.1.mlp.post", mid]
    )
    torch.testing.assert_close(split, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache["blocks.1.attn.z"], ref["blocks.1.attn.z"], atol=1e-5, rtol=1e-5)
    # mlp_in is a copy of the residual of its own run (per-head inputs change the attention's
    # products, so another run's residual agrees only to float rounding)
    torch.testing.assert_close(cache["blocks.1.hook_mlp_in"], cache[mid], atol=0, rtol=0)
    _, res = model.run_with_cache(tokens, names=[mid])

    # Zeroing query head 1's input changes that head's queries only.
    def zero_head(x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        x = x.clone()
        x[:, :, 1] = 0
        return x

    # The reference runs the same per-head products (an identity hook): the other heads' queries
    # are then equal bit for bit, not only to the rounding between per-head and whole products.
    with model.hooks(fwd=[("blocks.1.hook_q_input", lambda x, hook: x)]):
        _, qs = model.run_with_cache(tokens, names=["blocks.1.attn.q"])
    with model.hooks(fwd=[("blocks.1.hook_q_input", zero_head)]):
        _, patched = model.run_with_cache(tokens, names=["blocks.1.attn.q"])
    changed = (patched["blocks.1.attn.q"] - qs["blocks.1.attn.q"]).abs().amax(dim=(0, 1, 3))
    assert changed[1] > 0 and torch.count_nonzero(changed) == 1
    # Patching mlp_in changes the MLP but not the residual it was copied from.
    with model.hooks(fwd=[("blocks.1.mlp_in", lambda x, h: x.mul_(0))]):
        _, zeroed = model.run_with_cache(tokens, names=["blocks.1.mlp.post", mid])
    assert not torch.allclose(zeroed["blocks.1.mlp.post"], ref["blocks.1.mlp.post"])
    torch.testing.assert_close(zeroed[mid], res[mid], atol=0, rtol=0)


def test_result_is_opt_in_and_sums_to_the_attention_output(model: HookedDecoder) -> None:
    tokens = torch.randint(0, model.cfg.d_vocab, (1, 5))
    _, default = model.run_with_cache(tokens)
    assert not any(n.endswith("attn.result") for n in default)
    _, cache = model.run_with_cache(tokens, names=["blocks.0.attn.result", "blocks.0.attn.z"])
    o = model.blocks[0].attn.o_proj
    summed = cache["blocks.0.attn.result"].sum(2) + (o.bias if o.bias is not None else 0)
    torch.testing.assert_close(summed, o(cache["blocks.0.attn.z"].flatten(2)), atol=1e-5, rtol=1e-5)


def test_hook_points_do_not_change_the_output(model: HookedDecoder) -> None:
    # Caching everything forces the explicit attention path; it must agree with the fused one.
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 9))
    plain = model(tokens)
    cached, _ = model.run_with_cache(tokens, names=lambda n: True)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=1e-5)


def test_zero_ablating_a_neuron_equals_zeroing_its_output_weights(model: HookedDecoder) -> None:
    tokens = torch.randint(0, model.cfg.d_vocab, (1, 6))

    def kill(x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        x = x.clone()
        x[..., 5] = 0
        return x

    hooked = model.run_with_hooks(tokens, fwd=[("blocks.1.mlp.post", kill)])
    with torch.no_grad():
        w = model.blocks[1].mlp.down_proj.weight
        saved = w[:, 5].clone()
        w[:, 5] = 0
        edited = model(tokens)
        w[:, 5] = saved
    torch.testing.assert_close(hooked, edited, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(hooked, model(tokens))


def test_zero_ablating_a_head_equals_zeroing_its_output_weights(model: HookedDecoder) -> None:
    tokens = torch.randint(0, model.cfg.d_vocab, (1, 6))
    dh = model.cfg.d_head

    def kill(z: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        z = z.clone()
        z[:, :, 2] = 0
        return z

    hooked = model.run_with_hooks(tokens, fwd=[("blocks.0.attn.z", kill)])
    with torch.no_grad():
        w = model.blocks[0].attn.o_proj.weight
        saved = w.clone()
        w[:, 2 * dh : 3 * dh] = 0
        edited = model(tokens)
        w.copy_(saved)
    torch.testing.assert_close(hooked, edited, atol=1e-6, rtol=1e-6)


def test_backward_hooks_see_autograd_gradients(model: HookedDecoder) -> None:
    tokens = torch.randint(0, model.cfg.d_vocab, (1, 6))
    names = ["embed", "blocks.0.attn.pattern", "blocks.1.mlp.post", "blocks.1.resid_post", "ln_final.scale"]
    kept: dict[str, torch.Tensor] = {}
    seen: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook: HookPoint) -> None:
        x.retain_grad()
        kept[hook.name] = x

    def record(g: torch.Tensor, hook: HookPoint) -> None:
        seen[hook.name] = g.clone()

    fwd = [(n, keep) for n in names]
    bwd = [(n, record) for n in names]
    with model.hooks(fwd=fwd, bwd=bwd):
        logits = model(tokens)
        (logits[0, -1, 3] - logits[0, -1, 4]).backward()
    assert set(seen) == set(names)
    for n in names:
        assert kept[n].grad is not None
        torch.testing.assert_close(seen[n], kept[n].grad, atol=0, rtol=0)


def test_backward_hook_can_replace_the_gradient(llama: HookedDecoder) -> None:
    tokens = torch.randint(0, llama.cfg.d_vocab, (1, 5))

    def grads(scale: float) -> torch.Tensor:
        out: dict[str, torch.Tensor] = {}

        def double(g: torch.Tensor, hook: HookPoint) -> torch.Tensor:
            return g * scale

        def record(g: torch.Tensor, hook: HookPoint) -> None:
            out["g"] = g

        with llama.hooks(bwd=[("blocks.1.resid_mid", double), ("embed", record)]):
            llama(tokens)[0, -1, 7].backward()
        return out["g"]

    # resid_mid of the last block carries every path to the logits except through its own MLP's
    # input... so scaling its gradient scales the embedding gradient along those paths only.
    g1, g0 = grads(1.0), grads(0.0)
    assert not torch.allclose(g1, g0)
    assert torch.count_nonzero(g0) == 0  # every path from embed passes resid_mid of the last block


def test_hooks_context_removes_hooks_even_on_error(llama: HookedDecoder) -> None:
    def boom(x: torch.Tensor, hook: HookPoint) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError), llama.hooks(fwd=[("blocks.*.mlp.post", boom)]):
        llama(torch.tensor([[1, 2, 3]]))
    assert not any(hp.live for hp in llama.hook_points.values())
    llama(torch.tensor([[1, 2, 3]]))


def test_transformerlens_aliases(llama: HookedDecoder) -> None:
    _, cache = llama.run_with_cache("ab", names=["blocks.0.hook_resid_pre", "blocks.1.attn.hook_pattern"])
    assert "blocks.0.resid_pre" in cache
    torch.testing.assert_close(cache["blocks.1.attn.hook_pattern"], cache["blocks.1.attn.pattern"])
    assert llama.hook_point("blocks.1.mlp.hook_post") is llama.hook_points["blocks.1.mlp.post"]
    assert llama.hook_point("hook_embed") is llama.hook_points["embed"]


def test_unknown_hook_name_suggests_the_closest(llama: HookedDecoder) -> None:
    with pytest.raises(HookError, match=r"blocks\.0\.mlp\.post"):
        llama.run_with_cache("ab", names=["blocks.0.mlp.pots"])
    with pytest.raises(HookError, match="no hook point"):
        llama.add_hook("blocks.*.nothing", lambda x, h: None)


def test_hook_returning_a_wrong_shape_is_a_clear_error(llama: HookedDecoder) -> None:
    with pytest.raises(HookError, match=r"blocks\.0\.mlp\.post.*expected None or a tensor of shape"):
        llama.run_with_hooks("abc", fwd=[("blocks.0.mlp.post", lambda x, h: x[..., :3])])


def test_glob_and_predicate_filters(llama: HookedDecoder) -> None:
    _, cache = llama.run_with_cache("abc", names="blocks.*.attn.pattern")
    assert list(cache) == ["blocks.0.attn.pattern", "blocks.1.attn.pattern"]
    assert cache.stack("attn.pattern").shape[:2] == (2, 1)
    _, cache = llama.run_with_cache("abc", names=lambda n: n.endswith("scale"))
    assert all(n.endswith("scale") for n in cache) and len(cache) == 5


def test_hook_names_snapshot() -> None:
    # Hook names are an API: this list changes only with a documented breaking change.
    gemma = tiny_model("gemma3")
    block0 = [n.removeprefix("blocks.0.") for n in gemma.hook_names() if n.startswith("blocks.0.")]
    assert block0 == [
        "resid_pre",
        "attn_in",
        "q_input",
        "k_input",
        "v_input",
        "ln1.scale",
        "ln1.normalized",
        "ln1.out",
        "attn.q_raw",
        "attn.k_raw",
        "attn.q_norm.scale",
        "attn.q_norm.normalized",
        "attn.q_norm.out",
        "attn.k_norm.scale",
        "attn.k_norm.normalized",
        "attn.k_norm.out",
        "attn.q",
        "attn.k",
        "attn.v",
        "attn.scores",
        "attn.pattern",
        "attn.z",
        "attn.result",
        "ln1_post.scale",
        "ln1_post.normalized",
        "ln1_post.out",
        "attn_out",
        "resid_mid",
        "mlp_in",
        "ln2.scale",
        "ln2.normalized",
        "ln2.out",
        "mlp.pre",
        "mlp.gate",
        "mlp.linear",
        "mlp.post",
        "ln2_post.scale",
        "ln2_post.normalized",
        "ln2_post.out",
        "mlp_out",
        "resid_post",
    ]
    gpt2 = tiny_model("gpt2")
    assert [n for n in gpt2.hook_names() if not n.startswith("blocks.")] == [
        "embed",
        "pos_embed",
        "ln_final.scale",
        "ln_final.normalized",
        "ln_final.out",
        "logits",
    ]
    neox = tiny_model("neox")
    assert not any(n.endswith("resid_mid") for n in neox.hook_names())  # parallel residual: no mid point


def test_run_with_hooks_backward_hooks_fire_on_the_callers_backward(llama: HookedDecoder) -> None:
    # The docstring's promise: backward hooks fire when the caller calls backward, after the
    # forward (and its hook context) has returned.
    seen: dict[str, torch.Tensor] = {}

    def record(g: torch.Tensor, hook: HookPoint) -> None:
        seen[hook.name] = g.clone()

    logits = llama.run_with_hooks(torch.tensor([[3, 4, 5, 6]]), bwd=[("blocks.*.resid_post", record)])
    assert not seen  # nothing fires before backward
    logits[0, -1, 7].backward()
    assert set(seen) == {"blocks.0.resid_post", "blocks.1.resid_post"}
    assert not any(hp.live for hp in llama.hook_points.values())  # still detached afterwards


def test_glob_over_a_transformerlens_alias(llama: HookedDecoder) -> None:
    _, cache = llama.run_with_cache("abc", names="blocks.*.hook_resid_post")
    assert list(cache) == ["blocks.0.resid_post", "blocks.1.resid_post"]
    _, cache = llama.run_with_cache("abc", names="blocks.1.hook_*")
    assert "blocks.1.resid_pre" in cache and "blocks.1.mlp_out" in cache
    assert all(n.startswith("blocks.1.") for n in cache)
    _, cache = llama.run_with_cache("abc", names="blocks.0.attn.hook_pat*")
    assert list(cache) == ["blocks.0.attn.pattern"]


def test_gradients_in_the_cache_match_autograd(llama: HookedDecoder) -> None:
    tokens = torch.randint(0, llama.cfg.d_vocab, (2, 6))
    names = ["blocks.1.hook_mlp_out", "blocks.0.hook_resid_post", "blocks.0.attn.hook_rot_q"]
    _, cache = llama.run_with_cache(tokens, names_filter=names, incl_bwd=True)
    assert set(cache) == {"blocks.1.mlp_out", "blocks.0.resid_post", "blocks.0.attn.q"} | {
        "blocks.1.mlp_out_grad",
        "blocks.0.resid_post_grad",
        "blocks.0.attn.q_grad",
    }
    # The same gradient by hand: retain the activation and differentiate the next-token loss.
    kept: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook: HookPoint) -> None:
        x.retain_grad()
        kept[hook.name] = x

    with llama.hooks(fwd=[("blocks.1.mlp_out", keep)], bwd=[("blocks.1.mlp_out", lambda g, h: None)]):
        logits = llama(tokens)
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)
    )
    loss.backward()
    torch.testing.assert_close(cache["blocks.1.hook_mlp_out_grad"], kept["blocks.1.mlp_out"].grad)
    # A custom scalar metric.
    _, cache = llama.run_with_cache(
        tokens, names="blocks.1.resid_post", incl_bwd=True, metric=lambda lg: lg[0, -1, 5]
    )
    assert cache["blocks.1.resid_post_grad"][1].abs().sum() == 0  # the metric reads batch 0 only
    with pytest.raises(HookError, match="names_filter"):
        llama.run_with_cache(tokens, names="embed", names_filter="embed")


def test_transformerlens_keyword_spellings(llama: HookedDecoder) -> None:
    seen: list[str] = []
    llama.run_with_hooks("ab", fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, h: seen.append(h.name))])
    assert seen == ["blocks.0.resid_pre"]
    with pytest.raises(HookError, match="fwd_hooks"):
        llama.run_with_hooks(
            "ab", fwd=[("embed", lambda x, h: None)], fwd_hooks=[("embed", lambda x, h: None)]
        )
