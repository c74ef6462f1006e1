"""Dispatch settings (env prefix ``DISPATCH_``; platform-wide names also read unprefixed).

派遣服务配置（环境变量前缀 ``DISPATCH_``；平台级变量也可不带前缀读取）。
"""

from __future__ import annotations

from typing import Literal

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DispatchSettings(ServiceSettings):
    """Settings of the dispatch service (派遣服务). 派遣服务配置。"""

    model_config = SettingsConfigDict(env_prefix="DISPATCH_", extra="ignore")

    #: Where the grid service answers ``GET /v1/jurisdiction``. 网格服务地址。
    grid_url: str = "http://127.0.0.1:8003"
    #: Bearer token dispatch uses to read the grid service; empty → ``SERVICE_TOKEN``. 读取网格服务所用令牌。
    grid_token: str = ""
    #: Where the metrics service answers (the dashboard's same-origin proxy). 绩效服务地址（调度台代理）。
    metrics_url: str = "http://127.0.0.1:8004"
    #: County to load (``?county=``); empty → the grid's only county. 加载的区县；为空则取唯一区县。
    county_code: str = ""
    #: Seconds between attempts while the grid service does not answer. 网格服务无响应时的重试间隔（秒）。
    grid_retry_s: float = 2.0
    #: Same matter within this distance (m) of an open case → merged. 并案距离（米）。
    duplicate_distance_m: float = 50.0
    #: … and within this many hours. 并案时间窗（小时）。
    duplicate_window_h: float = 24.0
    #: 退单 count after which a case goes to triage instead of the next candidate. 退单次数上限。
    max_rejections: int = 2
    #: Overdue sweep period (s); 0 disables the sweep. 超期扫描间隔（秒）；0 表示不扫描。
    overdue_sweep_interval_s: float = 30.0
    #: Cases flagged per sweep transaction. 每次扫描处理的案件数上限。
    overdue_sweep_batch: int = 200
    #: Consumer group of ``incident.reported``. 事件消费组。
    incident_group_id: str = "dispatch"
    #: Most ``incident.reported`` records in flight at once (all partitions); a backlog is applied
    #: in partition batches of up to this many, each in one transaction — fewer statements and
    #: commits per event. 同时在途的事件上限（各分区合计）；积压时按批处理，每批一个事务。
    incident_max_batch: int = 2000
    #: Which intake lanes this process dispatches: ``both`` (one process: live first, bulk while no
    #: live batch is in hand), or ``live`` / ``bulk`` to run a history import in processes of its own
    #: (started with a lower CPU priority, ``nice``, so the operating system keeps live work first),
    #: or ``none``: the 调度台's API alone (staff actions, the dashboard, the sweep), the live reports
    #: made into cases by another process, so a burst of staff actions never queues ahead of a report.
    #: 本进程消费的通道：both（同进程内实时优先），live / bulk（批量导入另起低优先级进程），
    #: 或 none（只提供调度台接口，立案由另一进程负责，人工操作不与实时立案排队）。
    incident_lanes: Literal["both", "live", "bulk", "none"] = "both"
    #: Consumer group of the bulk lane ``incident.reported.bulk`` (history imports). 批量导入通道消费组。
    bulk_group_id: str = "dispatch-bulk"
    #: Most bulk-lane records in flight at once: a live report arriving meanwhile shares the CPU
    #: with at most this many. 批量通道同时在途的事件上限（实时事件最多与这么多共享 CPU）。
    bulk_max_batch: int = 1000
    #: Prefix of the per-replica consumer group of ``jurisdiction.changed`` (every replica reloads).
    #: 辖区变更消费组前缀（每个副本各自一组，均重新加载）。
    jurisdiction_group_prefix: str = "dispatch-jurisdiction"
    #: SSE poll period (s). 事件流轮询间隔（秒）。
    stream_poll_s: float = 0.5
    #: 任务推送: seconds between polls of the push queue and of due deliveries; 0 disables pushing.
    #: 推送轮询间隔（秒）；0 表示不推送。
    push_poll_s: float = 1.0
    #: Failed attempts after which a delivery is dead-lettered (visible, never dropped). 推送失败上限。
    push_max_attempts: int = 6
    #: The first retry's delay (s); each next one doubles, up to an hour. 首次重试间隔（秒），此后翻倍。
    push_backoff_s: float = 5.0
    #: A webhook's answer is awaited this long (s). 推送请求超时（秒）。
    push_timeout_s: float = 10.0
