"""Per-role model settings (scenario `roles.<role>` or `--<role>-model` on the CLI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)  # any litellm model string, e.g. openai/gpt-4o-mini
    temperature: float | None = None
    max_tokens: int | None = Field(None, ge=1)
    api_base: str | None = None  # e.g. a local vLLM/llama.cpp/Ollama OpenAI-compatible URL
    api_key: str | None = None
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0)
    max_concurrency: int = Field(64, ge=1)  # run-wide in-flight requests for this model
    cost_per_1k_input: float | None = None  # for models litellm has no price for (local ones)
    cost_per_1k_output: float | None = None
    extra: dict[str, Any] = Field(default_factory=dict)  # passed through to litellm
    # litellm (default) reaches any provider; openai-http is a plain POST to an OpenAI-compatible
    # api_base, for local servers at high concurrency where litellm's ~2.5-5 ms CPU per call dominates.
    transport: Literal["litellm", "openai-http"] = "litellm"
    max_reply_bytes: int = Field(8_000_000, ge=10_000)  # openai-http: a larger body is this call's error
