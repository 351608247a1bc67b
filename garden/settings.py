"""Settings: where the garden and its log live, and how proposers are reached.

Flags beat the environment, which beats the defaults. Defaults: the garden `./patterns`, the log
`./.garden/events.db` (both relative to the working directory), the offline proposer. Every
setting has a `GARDEN_` environment variable; the OpenAI ones also take the SDK's usual names
(`OPENAI_API_KEY`, `OPENAI_BASE_URL`), so a shell set up for other tools works here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from garden.errors import SettingsError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GARDEN_", extra="ignore", populate_by_name=True)

    garden: Path = Path("patterns")
    db: Path = Path(".garden/events.db")
    #: Keep parsed files in `parse-cache.db` beside the log (GARDEN_CACHE=false: parse every time).
    cache: bool = True

    proposer: Literal["offline", "llm"] = "offline"
    #: A tend's second process (`flows.helper`: the offline proposer's asking, a share of the
    #: ranking's tokenising and of preparing the files to write): auto (when the tend asks enough
    #: patterns and the machine has a second core), on, or off.
    second_process: Literal["auto", "on", "off"] = "auto"
    candidates: int = Field(20, ge=1, le=200, description="candidates shown per pattern")

    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GARDEN_API_KEY", "OPENAI_API_KEY", "api_key"))
    base_url: str | None = Field(
        None, validation_alias=AliasChoices("GARDEN_BASE_URL", "OPENAI_BASE_URL", "base_url"))
    model: str | None = None
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    concurrency: int = Field(8, ge=1, le=256)
    requests_per_minute: int | None = Field(None, ge=1)
    max_requests: int | None = Field(None, ge=0, description="per-run request budget")
    max_tokens: int | None = Field(None, ge=0, description="per-run token budget")
    price_prompt_per_1k: float | None = Field(None, ge=0)
    price_completion_per_1k: float | None = Field(None, ge=0)

    @property
    def parse_cache(self) -> Path | None:
        return self.db.parent / "parse-cache.db" if self.cache else None


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with non-None `overrides` (the command-line flags) on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"invalid setting GARDEN_{where.upper()}: {first['msg']}") from e
