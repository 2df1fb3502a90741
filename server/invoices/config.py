"""E-invoice settings (`SHUIDIAN_INVOICE_*`): the Nuonuo app's keys and addresses, and how
the issuing worker paces itself. Without an app key, embedded mode issues on the local fake
platform (server/invoices/sandbox.py); production leaves invoices queued and says so."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InvoiceSettings(BaseSettings):
    """Field `x` is set by `SHUIDIAN_INVOICE_X`."""

    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_INVOICE_", extra="ignore")

    nuonuo_app_key: str = ""
    nuonuo_app_secret: str = Field(default="", repr=False)
    nuonuo_app_secret_file: Path | None = None
    nuonuo_endpoint: str = "https://sdk.nuonuo.com/open/v1/services"
    nuonuo_token_url: str = "https://open.nuonuo.com/accessToken"
    timeout_s: float = 15.0
    period_s: float = 10.0  # the worker's round when idle
    poll_s: float = 30.0  # between two questions about one invoice being issued
    batch: int = 20
    # Temporary failures (platform busy or unreachable) tried this many times, with
    # back-off (15 s, 30 s, 1 min … 1 h), before the invoice is failed for a person to retry.
    max_attempts: int = 8

    def app_secret(self) -> str:
        if self.nuonuo_app_secret_file is not None:
            return self.nuonuo_app_secret_file.read_text().strip()
        return self.nuonuo_app_secret
