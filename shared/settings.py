"""Settings shared by every service (pydantic-settings).

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``INTAKE_``, ``GRID_``, ``DISPATCH_``, ``METRICS_``). The platform-wide
variables (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``STAFF_TOKENS`` …)
are read with the service prefix first and then without it, so one
environment configures the whole platform and a single service can still be
overridden (``DISPATCH_DATABASE_URL`` beats ``DATABASE_URL``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


class _PlatformEnvSource(EnvSettingsSource):
    """Unprefixed environment variables, for the platform-wide fields only."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        return {k: v for k, v in data.items() if k in ServiceSettings.model_fields}


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``model_config`` (env prefix) and ``service_name``."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")
    service_name: ClassVar[str] = "service"

    database_url: str = DEFAULT_DATABASE_URL
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    #: Apache Kafka supports the idempotent producer; Tansu refuses InitProducerId,
    #: so it is off by default and on in docker-compose.yml. Correctness never depends on it.
    kafka_enable_idempotence: bool = False
    #: JSON ``{"<token>": {"role": ..., "township": ..., "unit": ...}}``; empty → dev tokens.
    staff_tokens: str = ""
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = 20
    outbox_batch_size: int = 1000
    outbox_poll_interval_s: float = 0.5
    #: After a commit wakes the relay, wait this long so one claim carries many requests' events.
    outbox_linger_s: float = 0.005
    #: How often the relay checks that the broker still holds what it published and releases
    #: rows every consumer group has. 核对代理与释放已消费行的间隔。
    outbox_keep_interval_s: float = 2.0
    #: A log's commits release retained rows only once its epoch is this old (a commit in flight when
    #: the broker restarted may land in the new log; the group's next commits replace it).
    outbox_release_grace_s: float = 30.0
    #: How long published rows of topics without a fixed consumer group are kept (7 days).
    outbox_retention_s: float = 7 * 24 * 3600
    #: Readiness calls a consumer stalled when it is behind and applied nothing for this long.
    consumer_stall_after_s: float = 30.0
    consumer_max_batch: int = 500
    consumer_max_attempts: int = 3

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        platform_env = _PlatformEnvSource(settings_cls, env_prefix="")
        return init_settings, env_settings, platform_env, dotenv_settings, file_secret_settings
