"""The one sparse coder: an SAE, a transcoder or a skip-transcoder, with any activation.

Parameters use SAELens's layout and names, so the weights read and write without transposes:
``W_enc`` (d_in, n), ``b_enc`` (n), ``W_dec`` (n, d_out), ``b_dec`` (d_out), optional ``W_skip``
(d_in, d_out) and ``threshold`` (n) for JumpReLU. In the coder's own (normalised) space::

    pre  = (x / scale_in - b_dec [SAEs only]) @ W_enc + b_enc
    acts = activation(pre)
    y    = (acts @ W_dec + b_dec + (x / scale_in) @ W_skip) * scale_out

Input normalisation (docs/autoencoders.md): ``scale_in`` is a stored scalar, the mean input
norm over training tokens divided by sqrt(d_in), so the coder sees inputs of mean norm
sqrt(d_in) (SAELens's ``expected_average_only_in``); ``scale_out`` does the same for a
transcoder's target and equals ``scale_in`` for an SAE. Formats without a scale get it folded
into the weights on export (:meth:`SparseCoder.folded`).

Spliced in (:func:`mechscope.models.dictionaries.splicing.splice_coder`), the coder returns
``recon + error`` where ``error = target - recon`` of the *unedited* latents, so the model's
outputs are unchanged until a hook on ``acts`` edits a latent. An SAE is spliced where it reads
(target = input). A transcoder is spliced at the point it predicts (``out_hook``, the MLP's
write) and gets its input from an :class:`InputTap` spliced at ``hook`` earlier in the same
forward. Its hook points are ``acts`` (batch, pos, n), ``recon`` and ``error`` (batch, pos, d_out).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mechscope.errors import InputError
from mechscope.models.dictionaries import activations as F
from mechscope.models.dictionaries.config import DictionaryConfig
from mechscope.models.hooks import HookPoint, current_positions


class SparseCoder(nn.Module):
    """A sparse dictionary (SAE or transcoder) with SAELens-layout parameters."""

    threshold: torch.Tensor  # (n,) buffers
    scale_in: torch.Tensor  # () scalars
    scale_out: torch.Tensor

    def __init__(self, cfg: DictionaryConfig, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.cfg = cfg
        n, d_in, d_out = cfg.n_latents, cfg.d_in, cfg.width_out
        self.W_enc = nn.Parameter(torch.zeros(d_in, n, dtype=dtype))
        self.b_enc = nn.Parameter(torch.zeros(n, dtype=dtype))
        self.W_dec = nn.Parameter(torch.zeros(n, d_out, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(d_out, dtype=dtype))
        self.W_skip = (
            nn.Parameter(torch.zeros(d_in, d_out, dtype=dtype)) if cfg.kind == "skip_transcoder" else None
        )
        # JumpReLU's threshold (also BatchTopK's, learnt while training and used after it).
        self.register_buffer("threshold", torch.zeros(n, dtype=dtype))
        self.register_buffer("scale_in", torch.ones((), dtype=dtype))
        self.register_buffer("scale_out", torch.ones((), dtype=dtype))
        self.acts = HookPoint()  # (batch, pos, n): the latents
        self.recon = HookPoint()  # (batch, pos, d_out): the reconstruction of the (edited) latents
        self.error = HookPoint()  # (batch, pos, d_out): the input minus the unedited reconstruction
        self.training_stats: dict[str, float] = {}  # the last training step's metrics, saved with it
        self._input: torch.Tensor | None = None  # a spliced transcoder's input, left by its InputTap

    # ----- the maths ---------------------------------------------------------------------------
    @property
    def activation(self) -> str:
        """The activation the coder runs: ``batchtopk`` runs as ``jumprelu`` outside training."""
        act = self.cfg.activation
        return "jumprelu" if act == "batchtopk" and not self.training else act

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_in) input in the model's space -> (..., n) pre-activations."""
        x = x.to(self.W_enc.dtype) / self.scale_in
        if self.cfg.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        act = self.activation
        if act == "topk":
            assert self.cfg.k is not None
            return F.topk(pre, self.cfg.k)[0]
        if act == "batchtopk":
            assert self.cfg.k is not None
            return F.batch_topk(pre, self.cfg.k)
        if act == "jumprelu":
            return F.jumprelu(pre, self.threshold)
        return pre.relu()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_in) -> (..., n) latents."""
        return self.activate(self.pre_acts(x))

    def decode(self, acts: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """(..., n) latents -> (..., d_out) output in the model's space (``x``: a skip-transcoder's
        input, for its linear term)."""
        y = acts @ self.W_dec + self.b_dec
        if self.W_skip is not None:
            if x is None:
                raise InputError("a skip-transcoder's decode needs its input x for the skip term")
            y = y + (x.to(self.W_skip.dtype) / self.scale_in) @ self.W_skip
        return y * self.scale_out

    @property
    def site(self) -> str:
        """The hook point it is spliced at: where an SAE reads, where a transcoder writes."""
        return self.cfg.out_hook if self.cfg.kind != "sae" and self.cfg.out_hook else self.cfg.hook

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Spliced at :attr:`site`: ``recon + error``, equal to ``y`` (the activation there) until
        ``acts`` is edited. ``attn.z`` (batch, pos, head, d_head) is flattened to (batch, pos, d)."""
        shape = y.shape
        yf = y.reshape(*shape[:2], -1).to(self.W_enc.dtype) if y.dim() > 3 else y.to(self.W_enc.dtype)
        if self.cfg.kind == "sae":
            xf = yf
        else:  # the input its InputTap saw earlier in this forward
            x, self._input = self._input, None
            if x is None:
                raise InputError(
                    f"a {self.cfg.kind} runs with the InputTap at {self.cfg.hook}; use splice_coder"
                )
            xf = x.to(self.W_enc.dtype)
            if xf.shape[:-1] != yf.shape[:-1]:
                raise InputError(f"{self.cfg.hook} gave {tuple(x.shape)}, {self.site} {tuple(shape)}")
        if xf.shape[-1] != self.cfg.d_in or yf.shape[-1] != self.cfg.width_out:
            raise InputError(
                f"{self.cfg.hook}: the dictionary takes d_in={self.cfg.d_in}, got {tuple(xf.shape)}"
            )
        a = self.encode(xf)
        pos = current_positions()
        if pos is not None and pos.shape == a.shape[:2]:
            # Never trained on the start token (an attention sink, left out of training): its
            # latents would be noise, often the largest of a prompt. The error term carries it.
            a = a * (pos != 0).unsqueeze(-1).to(a.dtype)
        # A view is a distinct autograd node: the gradient at ``acts`` is the reconstruction
        # path's alone (W_dec g), while the error path cancels the encoder's (and the skip
        # term's), so the gradient reaching the input is the clean model's. Editing ``acts``
        # moves the output by the edit's decode.
        view = a.view_as(a)
        edited = self.acts(view)
        clean = self.decode(a, xf)
        same = edited is view and not torch.is_grad_enabled()
        recon = self.recon(clean if same else self.decode(edited, xf))
        error = self.error(yf - clean)
        return (recon + error).to(y.dtype).reshape(shape)

    # ----- views -------------------------------------------------------------------------------
    def decoder_rows(self) -> torch.Tensor:
        """(n, d_out): what one unit of each latent adds to the output, in the model's space."""
        return self.W_dec * self.scale_out

    def folded(self) -> dict[str, torch.Tensor]:
        """The weights with the input/output scales folded in (scale 1): the same function, for
        formats with no scale field (SAELens ``normalize_activations: none``, sparsify, OpenAI)."""
        s_in, s_out = self.scale_in, self.scale_out
        out = {
            "W_enc": self.W_enc / s_in,
            "b_enc": self.b_enc.clone(),
            "W_dec": self.W_dec * s_out,
            "b_dec": self.b_dec * s_out,
            "threshold": self.threshold.clone(),
        }
        if self.cfg.apply_b_dec_to_input and not torch.equal(s_in, s_out):
            raise InputError("an SAE's input and output scales must be equal to fold them")
        if self.W_skip is not None:
            out["W_skip"] = self.W_skip * (s_out / s_in)
        return {k: v.detach() for k, v in out.items()}

    def default_name(self) -> str:
        """A node-kind name for its latents, after the point it is spliced at:
        ``sae_l6_resid_post``, ``sae_l3_mlp_post``, ``transcoder_l3_mlp_out``."""
        parts = self.site.split(".")
        layer = f"l{parts[1]}_" if parts[0] == "blocks" and len(parts) > 2 else ""
        rest = "_".join(parts[2:] if layer else parts)
        return f"{self.cfg.kind}_{layer}{rest}".lower()

    def extra_repr(self) -> str:
        c = self.cfg
        k = f", k={c.k}" if c.activation in ("topk", "batchtopk") else ""
        return f"{c.kind} {c.hook}: {c.d_in} -> {c.n_latents} {c.activation}{k}"


class InputTap(nn.Module):
    """Spliced at a transcoder's input point: hands the activation to the coder (spliced later
    in the same forward, at its output point) and passes it on unchanged."""

    def __init__(self, coder: SparseCoder) -> None:
        super().__init__()
        self.__dict__["coder"] = coder  # not a submodule: the coder is spliced (and moved) on its own

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.__dict__["coder"]._input = x
        return x


def init_random(coder: SparseCoder, seed: int = 0) -> SparseCoder:
    """Unit-norm random decoder rows, the encoder their transpose (OpenAI's tied init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = torch.randn(coder.W_dec.shape, generator=g, dtype=torch.float32)
        w /= w.norm(dim=-1, keepdim=True)
        coder.W_dec.copy_(w)
        if coder.cfg.kind == "sae":
            coder.W_enc.copy_(w.T)
        else:  # a transcoder's encoder reads another space: a scaled random init
            coder.W_enc.copy_(torch.randn(coder.W_enc.shape, generator=g) / math.sqrt(coder.cfg.d_in))
    return coder
