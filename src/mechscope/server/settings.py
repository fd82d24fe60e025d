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


class Settings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    cors_origins: list[str] = Field(default_factory=list, description="extra origins allowed to call the API")
    queue_size: int = Field(
        default=8, ge=1, description="model jobs waiting at once; more get 503 + Retry-After"
    )
    cache_size: int = Field(default=64, ge=0, description="results kept, least recently used dropped first")
    limits: Limits = Field(default_factory=lambda: Limits())
    dataset: Path | None = Field(default=None, description="collated dataset folder shown on node pages")
