"""Settings shared by every service (pydantic-settings).

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``INTAKE_``, ``GRID_``, ``DISPATCH_``, ``METRICS_``). The platform-wide
variables (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``STAFF_TOKENS`` …)
are read with the service prefix first and then without it, so one
environment configures the whole platform and a single service can still be
overridden (``DISPATCH_DATABASE_URL`` beats ``DATABASE_URL``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.auth import DEV_SERVICE_TOKEN, parse_staff_tokens

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


class _PlatformEnvSource(EnvSettingsSource):
    """Unprefixed environment variables, for the platform-wide fields only."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        return {k: v for k, v in data.items() if k in ServiceSettings.model_fields}


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``model_config`` (env prefix) and ``service_name``."""

    #: Errors never echo the input: it holds secrets (tokens, keys, passwords in URLs).
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", hide_input_in_errors=True)
    service_name: ClassVar[str] = "service"

    database_url: str = DEFAULT_DATABASE_URL
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    #: Apache Kafka supports the idempotent producer; Tansu refuses InitProducerId,
    #: so it is off by default and on in docker-compose.yml. Correctness never depends on it.
    kafka_enable_idempotence: bool = False
    #: JSON ``{"<token>": {"role": ..., "township": ..., "unit": ...}}``; required unless dev credentials.
    staff_tokens: str = ""
    #: ``ZHPT_DEV_CREDENTIALS=true``: empty credential settings mean the dev ones (``make run``, tests);
    #: production never sets it. 开发凭据开关：仅开发环境显式开启。
    dev_credentials: bool = Field(False, validation_alias=AliasChoices("zhpt_dev_credentials", "dev_credentials"))
    #: ``SERVICE_TOKEN``: the staff token (one of ``STAFF_TOKENS``) the services and the launcher use
    #: to call each other (dispatch and metrics read grid with it). 服务间调用令牌。
    service_token: str = ""
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
    #: The outbox lanes this process relays 本进程中继的通道: ``both``, or ``live`` / ``bulk`` when a history
    #: import runs in processes of its own (each lane is relayed by whichever process holds its lock).
    outbox_lanes: Literal["both", "live", "bulk"] = "both"
    #: CPU priority (nice) of this process's PostgreSQL backends, for a history import's processes run
    #: at a lower priority themselves: their database work then yields to the live processes' too
    #: (only where PostgreSQL runs on this host as this user; 0: unchanged). 本进程数据库后端的 CPU 优先级。
    db_backend_nice: int = 0
    #: Run this process's PostgreSQL backends under the idle scheduling policy (``SCHED_IDLE``, as
    #: ``chrt --idle 0`` runs a process): a history import's database work then only takes a core no
    #: live process wants (same condition as ``db_backend_nice``). 数据库后端以空闲调度策略运行。
    db_backend_idle: bool = False
    #: Every this many seconds the process hands the C allocator's free pages back to the operating
    #: system (``shared/memory.py``: keeps a long import's resident memory flat; 0: never). 归还空闲内存的间隔。
    memory_trim_interval_s: float = 60.0
    #: How long published rows of topics without a fixed consumer group are kept (7 days).
    outbox_retention_s: float = 7 * 24 * 3600
    #: Readiness calls a consumer stalled when it is behind and applied nothing for this long.
    consumer_stall_after_s: float = 30.0
    consumer_max_batch: int = 500
    consumer_max_attempts: int = 3

    @model_validator(mode="after")
    def _credentials(self) -> ServiceSettings:
        """Refuse a blank or malformed ``STAFF_TOKENS`` unless dev credentials are asked for."""
        parse_staff_tokens(self.staff_tokens, dev_credentials=self.dev_credentials)
        return self

    def service_bearer(self, explicit: str = "", *, setting: str = "SERVICE_TOKEN") -> str:
        """The token this service calls others with: ``explicit`` (a per-service override),
        else ``SERVICE_TOKEN``, else the dev admin token under dev credentials; none → a clear error.
        服务间调用所用令牌；未配置时报错说明。"""
        token = explicit.strip() or self.service_token.strip()
        if token:
            return token
        if self.dev_credentials and not self.staff_tokens.strip():
            return DEV_SERVICE_TOKEN
        raise ValueError(f"{setting} is empty: set SERVICE_TOKEN to a token of STAFF_TOKENS that may read grid")

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
