"""Where the garden and its log live, from defaults, environment (`GARDEN_...`) and flags.

Flags beat the environment, which beats the defaults: `./patterns` and `./.garden/events.db`,
both relative to the working directory.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from garden.errors import SettingsError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GARDEN_", extra="ignore")

    garden: Path = Path("patterns")
    db: Path = Path(".garden/events.db")


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with non-None `overrides` (the command-line flags) on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"invalid setting GARDEN_{where.upper()}: {first['msg']}") from e
