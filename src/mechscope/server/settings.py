"""Server settings: where to listen and the limits every request is checked against."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class Limits(BaseModel):
    """Bounds on what one request may ask for; a request past one gets a 4xx naming the limit."""

    max_prompt_tokens: int = Field(default=256, ge=1, description="tokens per prompt, BOS included")
    max_k: int = Field(default=100, ge=1, description="top nodes per kind and metric; tokens per lens cell")
    max_verify: int = Field(default=50, ge=1, description="nodes ablated by one verify request")
    max_new_tokens: int = Field(default=128, ge=1, description="tokens one generate request may produce")
    max_batch: int = Field(
        default=16, ge=1, description="reference prompts of a mean ablation, targets, interventions"
    )
    max_grad_tokens: int = Field(
        default=1024,
        ge=1,
        description="tokens of one pass with gradients (rows x length): the prompt's row plus one row per "
        "multi-token target or distractor; bounds a request's memory",
    )
    max_request_tokens: int = Field(
        default=8_192,
        ge=1,
        description="tokens the model processes for one request: every row of every forward (prompt, each "
        "multi-token target and distractor teacher-forced as its own row, each patching cell, each "
        "generated step); bounds a request's memory and time before it is queued (docs/reliability.md)",
    )
    max_simulation_tokens: int = Field(
        default=8_192,
        ge=1,
        description="tokens the simulator's forwards process for one 'score my explanation' request: each "
        "record's simulation prompt, counted twice (a second pass reads split numbers such as '10')",
    )
    max_graph_tokens: int = Field(
        default=64,
        ge=2,
        description="prompt tokens of an attribution graph (its cost grows with their square)",
    )
    max_graph_features: int = Field(
        default=8192, ge=0, description="latents whose inputs one attribution graph computes (max_features)"
    )
    max_grid_values: int = Field(
        default=4_194_304,
        ge=1,
        description="unit activations one prompt-explorer grid holds (positions x layers x units, one byte "
        "each in the answer): 4M is a 90-token prompt over SmolLM2's 30 x 1536 neurons",
    )
    max_job_seconds: float = Field(
        default=120.0, gt=0, description="a patching sweep still running after this stops with a 422"
    )
    max_body_bytes: int = Field(default=2_000_000, ge=1024, description="request body size; more gets 413")


class Settings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    token: str | None = Field(
        default=None,
        description="access token every /api request must carry (Authorization: Bearer, or the cookie "
        "that /?token=... sets); required when the server listens beyond loopback",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names accepted in the Host header besides localhost, IP addresses and the bound "
        "host (a DNS-rebinding page sends its own name); '*' accepts any",
    )
    cors_origins: list[str] = Field(default_factory=list, description="extra origins allowed to call the API")
    queue_size: int = Field(
        default=8, ge=1, description="model jobs waiting at once; more get 503 + Retry-After"
    )
    cache_size: int = Field(default=64, ge=0, description="results kept, least recently used dropped first")
    limits: Limits = Field(default_factory=lambda: Limits())
    dataset: Path | None = Field(default=None, description="collated dataset folder shown on node pages")
    warm_up: bool = Field(
        default=False,
        description="run one short debugger pass on the model thread at start, so that the first request "
        "does not pay for building packed weights and caches (`mechscope serve` turns it on)",
    )
