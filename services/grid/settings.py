"""Grid settings (env prefix ``GRID_``; platform-wide names also read unprefixed).

网格服务配置（环境变量前缀 ``GRID_``；平台级变量也可不带前缀）。
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class GridSettings(ServiceSettings):
    """Settings of the grid service (辖区登记). 网格服务配置。"""

    model_config = SettingsConfigDict(env_prefix="GRID_", extra="ignore")

    #: Largest accepted bundle body (a county with ~10 k grids is tens of MB). 数据包请求体上限（字节）。
    max_bundle_bytes: int = 256 * 1024 * 1024
    #: How often each replica checks the database for imports made by other replicas.
    #: 各副本检查其他副本导入结果的间隔（秒）；0 表示不轮询。
    snapshot_refresh_s: float = 5.0
