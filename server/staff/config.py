"""Staff sign-in settings (`SHUIDIAN_STAFF_*`): the admin panel's sessions and the sign-in
rate limit."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StaffSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_STAFF_", extra="ignore")

    # A session ends after this long without a request, and after `session_ttl_s` at most.
    idle_timeout_s: int = Field(default=30 * 60, ge=60)
    session_ttl_s: int = Field(default=12 * 3600, ge=300)
    # `signin_failures` wrong passwords for one username or from one IP lock it this long.
    signin_failures: int = Field(default=5, ge=1)
    signin_lock_s: int = Field(default=15 * 60, ge=1)
