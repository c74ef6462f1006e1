"""Intake settings (env prefix ``INTAKE_``; platform-wide names also read unprefixed)."""

from __future__ import annotations

from datetime import datetime

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

#: Dev producer keys, used only with ZHPT_DEV_CREDENTIALS=true and INTAKE_API_KEYS empty (``make run``).
DEV_API_KEYS = (
    '{"12345": ["dev-12345"], "cityops": ["dev-cityops"], "gridworker": ["dev-gridworker"], '
    '"approval": ["dev-approval"], "alarm": ["dev-alarm"]}'
)


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    #: JSON: source → list of producer keys (``X-API-Key``).
    api_keys: str = ""
    #: Salt of the caller-phone hash (links repeat 12345 callers without storing the number on Kafka).
    phone_hash_salt: str = ""
    max_body_bytes: int = 1024 * 1024
    max_batch_body_bytes: int = 8 * 1024 * 1024
    max_batch_items: int = 500
    #: A reported time further in the future than this is rejected (clock skew allowance).
    future_tolerance_s: int = 300
    #: A reported time before this is rejected (not plausible); no offset → Asia/Shanghai. 最早可接受的上报时间。
    earliest_reported_at: datetime = datetime(2000, 1, 1)
    #: Intake's outbox rows are small and arrive in 500-record batches: the relay claims more at a
    #: time than other services (measured: ~15 % more events/s relayed than with 1 000).
    outbox_batch_size: int = 4000
