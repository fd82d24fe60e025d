"""Write the SAELens fixtures of tests/models/dictionaries/fixtures/ with SAELens's own save code.

Run once (needs ``pip install sae-lens``; it was written with sae-lens 6.54.12):
``python scripts/make_saelens_fixtures.py``. Each fixture folder also gets ``expected.safetensors``:
inputs and the latents and reconstructions SAELens computed for them, which the loader test
compares against mechscope's own maths.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "tests" / "models" / "dictionaries" / "fixtures"


def main() -> None:
    from sae_lens import (
        JumpReLUSAE,
        JumpReLUSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        TopKSAE,
        TopKSAEConfig,
    )
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(0)
    meta = SAEMetadata(model_name="tiny", hook_name="blocks.1.hook_resid_post")
    saes = {
        "saelens_topk": TopKSAE(TopKSAEConfig(d_in=8, d_sae=24, k=3, metadata=meta)),
        "saelens_jumprelu": JumpReLUSAE(JumpReLUSAEConfig(d_in=8, d_sae=24, metadata=meta)),
        "saelens_standard": StandardSAE(StandardSAEConfig(d_in=8, d_sae=24, metadata=meta)),
    }
    x = torch.randn(20, 8) * 2
    for name, sae in saes.items():
        with torch.no_grad():
            for p in sae.parameters():
                p.copy_(torch.randn_like(p) * 0.5)
            if name == "saelens_jumprelu":
                sae.threshold.copy_(torch.rand_like(sae.threshold) * 0.5)
            acts = sae.encode(x)
            recon = sae.decode(acts)
        folder = OUT / name
        sae.save_model(folder)
        save_file(
            {"x": x, "acts": acts.contiguous(), "recon": recon.contiguous()},
            str(folder / "expected.safetensors"),
        )
        print(folder)


if __name__ == "__main__":
    main()
