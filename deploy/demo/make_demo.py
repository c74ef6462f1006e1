"""Generate the demo county jurisdiction bundle / 生成示范县辖区数据包.

Writes ``deploy/demo/county.json``: 青溪县 (code 330127, a fictional county
placed near 119.05°E 29.58°N in western Zhejiang) with three townships
(白沙街道 330127001, 青溪镇 330127101, 枫林镇 330127102), ten villages and
communities, 46 grids, the "5+2" township offices, enforcement teams,
stationed agencies, county departments, a 54-matter catalogue, devolution
lists that differ per township (with a dated history: devolved, entrusted, assisted, returned),
mappings for the three sources and a few
override rules.

生成 ``deploy/demo/county.json``：虚构的青溪县（330127，位于浙江西部），3 个镇街、
10 个村/社区、46 个网格，含镇内设机构、综合行政执法队、派驻机构、县级部门、
54 项事项、各镇不同的下放清单、三类来源编码映射与若干派遣规则。

The output is deterministic (no randomness, no clock): run it again and the
file is byte-identical. 输出确定：重复运行结果逐字节相同。

Usage / 用法::

    .venv/bin/python deploy/demo/make_demo.py            # write county.json
    .venv/bin/python deploy/demo/make_demo.py --check    # exit 1 if county.json is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("county.json")

COUNTY_CODE = "330127"
COUNTY_NAME = "青溪县"

#: Coordinates are built in integer micro-degrees so shared edges are exactly equal.
#: 坐标以整数微度计算，保证相邻多边形公共边完全一致。
MICRO = 1_000_000

# (code, name, short, (x0, x1, y0, y1) micro-degrees, villages)
# village: (code suffix, name, (x0, x1, y0, y1), (columns, rows))
Box = tuple[int, int, int, int]
VillageSpec = tuple[str, str, Box, tuple[int, int]]
TOWNSHIPS: list[tuple[str, str, str, Box, list[VillageSpec]]] = [
    (
        "001",
        "白沙街道",
        "baisha",
        (119_000_000, 119_040_000, 29_580_000, 29_620_000),
        [
            ("001", "白沙社区", (119_000_000, 119_012_000, 29_580_000, 29_620_000), (2, 3)),
            ("002", "新安社区", (119_012_000, 119_026_000, 29_580_000, 29_620_000), (2, 3)),
            ("003", "桥西社区", (119_026_000, 119_040_000, 29_580_000, 29_620_000), (2, 3)),
        ],
    ),
    (
        "101",
        "青溪镇",
        "qingxi",
        (119_040_000, 119_100_000, 29_580_000, 29_620_000),
        [
            ("001", "青溪社区", (119_040_000, 119_070_000, 29_600_000, 29_620_000), (2, 2)),
            ("201", "上坊村", (119_070_000, 119_100_000, 29_600_000, 29_620_000), (2, 2)),
            ("202", "下坊村", (119_040_000, 119_070_000, 29_580_000, 29_600_000), (2, 2)),
            ("203", "茶园村", (119_070_000, 119_100_000, 29_580_000, 29_600_000), (2, 2)),
        ],
    ),
    (
        "102",
        "枫林镇",
        "fenglin",
        (119_000_000, 119_100_000, 29_540_000, 29_580_000),
        [
            ("001", "枫林社区", (119_000_000, 119_030_000, 29_540_000, 29_580_000), (2, 2)),
            ("201", "石门村", (119_030_000, 119_065_000, 29_540_000, 29_580_000), (2, 2)),
            ("202", "溪口村", (119_065_000, 119_100_000, 29_540_000, 29_580_000), (2, 2)),
        ],
    ),
]
COUNTY_BOX: Box = (119_000_000, 119_100_000, 29_540_000, 29_620_000)

BAISHA, QINGXI, FENGLIN = (f"{COUNTY_CODE}{t[0]}" for t in TOWNSHIPS)

# Township offices: (suffix, name, function) — the "5+2" layout. 镇内设机构（“5+2”）。
OFFICES: list[tuple[str, str, str]] = [
    ("dzb", "党政办公室", "party"),
    ("jjfz", "经济发展办公室", "economy"),
    ("nync", "农业农村办公室", "agriculture"),
    ("shsw", "社会事务办公室", "social"),
    ("pafz", "平安法治办公室", "order"),
    ("yjgl", "应急管理办公室", "emergency"),
    ("bmfw", "便民服务中心", "services"),
]

# County departments: (id, name). 县级部门。
DEPARTMENTS: list[tuple[str, str]] = [
    ("dept-cgj", "青溪县城市管理局"),
    ("dept-scjgj", "青溪县市场监督管理局"),
    ("dept-zrzyj", "青溪县自然资源和规划局"),
    ("dept-sthjj", "青溪县生态环境局"),
    ("dept-zjj", "青溪县住房和城乡建设局"),
    ("dept-yjglj", "青溪县应急管理局"),
    ("dept-gaj", "青溪县公安局"),
    ("dept-slj", "青溪县水利局"),
    ("dept-nyncj", "青溪县农业农村局"),
    ("dept-mzj", "青溪县民政局"),
    ("dept-sfj", "青溪县司法局"),
]

# Stationed agencies: (id, name, department, covers). 派驻机构。
# 城管、住建、应急、水利、农业农村、民政 have none: those matters are "whistled" to the county.
AGENCIES: list[tuple[str, str, str, list[str]]] = [
    ("pz-pcs-baisha", "青溪县公安局白沙派出所", "dept-gaj", [BAISHA]),
    ("pz-pcs-qingxi", "青溪县公安局青溪派出所", "dept-gaj", [QINGXI]),
    ("pz-pcs-fenglin", "青溪县公安局枫林派出所", "dept-gaj", [FENGLIN]),
    ("pz-scjgs-baisha", "青溪县市场监督管理局白沙市场监管所", "dept-scjgj", [BAISHA]),
    ("pz-scjgs-qingxi", "青溪县市场监督管理局青溪市场监管所", "dept-scjgj", [QINGXI, FENGLIN]),
    ("pz-zrzys-baisha", "青溪县自然资源和规划局白沙自然资源和规划所", "dept-zrzyj", [BAISHA]),
    ("pz-zrzys-qingxi", "青溪县自然资源和规划局青溪自然资源和规划所", "dept-zrzyj", [QINGXI, FENGLIN]),
    ("pz-sthjs", "青溪县生态环境局青溪生态环境所", "dept-sthjj", [BAISHA, QINGXI, FENGLIN]),
    ("pz-sfs-baisha", "青溪县司法局白沙司法所", "dept-sfj", [BAISHA]),
    ("pz-sfs-qingxi", "青溪县司法局青溪司法所", "dept-sfj", [QINGXI, FENGLIN]),
]

# Deadline presets (normal, urgent, critical): hours, or {"working_days": N}; + basis. 时限预设。
W_STD = (({"working_days": 5}, 8, 2), "working")  # 12345 一般件 5 个工作日 / 紧急件 1 个工作日 / 特急件 2 小时
W_LONG = ((80, 16, 4), "working")  # 10 个工作日
W_SOCIAL = ((120, 24, 4), "working")  # 15 个工作日
N_DAY = ((24, 4, 1), "natural")
N_DAY2 = ((24, 4, 2), "natural")
N_FAST = ((8, 2, 1), "natural")
N_EMERG = ((2, 1, 0.5), "natural")

# Matters: (code, name, group, department, township function, preset, auto-escalate). 事项清单。
Amount = float | dict[str, int]
MATTERS: list[tuple[str, str, str, str, str, tuple[tuple[Amount, float, float], str], bool]] = [
    # 市容环境
    ("SR001", "占道经营", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR002", "暴露垃圾", "市容环境", "dept-cgj", "enforcement", N_DAY2, False),
    ("SR003", "无证摊贩", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR004", "乱张贴小广告", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR005", "店外经营", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR006", "乱堆物堆料", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR007", "违规设置户外广告", "市容环境", "dept-cgj", "enforcement", W_LONG, False),
    ("SR008", "渣土车辆撒漏", "市容环境", "dept-cgj", "enforcement", N_DAY, False),
    ("SR009", "非机动车乱停放", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR010", "垃圾分类投放不规范", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    ("SR011", "沿街晾挂", "市容环境", "dept-cgj", "enforcement", W_STD, False),
    # 违法建设
    ("WJ001", "私搭乱建", "违法建设", "dept-cgj", "enforcement", W_LONG, False),
    ("WJ002", "违法占用耕地建房", "违法建设", "dept-zrzyj", "enforcement", W_LONG, False),
    ("WJ003", "擅自改变房屋承重结构", "违法建设", "dept-zjj", "enforcement", W_STD, False),
    ("WJ004", "违规搭建农业生产棚房", "违法建设", "dept-zrzyj", "enforcement", W_LONG, False),
    # 市场监管
    ("SC001", "无照经营", "市场监管", "dept-scjgj", "enforcement", W_STD, False),
    ("SC002", "食品安全问题", "市场监管", "dept-scjgj", "enforcement", N_DAY2, False),
    ("SC003", "价格欺诈", "市场监管", "dept-scjgj", "enforcement", W_STD, False),
    ("SC004", "销售过期食品", "市场监管", "dept-scjgj", "enforcement", W_STD, False),
    ("SC005", "虚假宣传", "市场监管", "dept-scjgj", "enforcement", W_LONG, False),
    ("SC006", "电梯困人", "市场监管", "dept-scjgj", "emergency", N_EMERG, True),
    # 环境保护
    ("HB001", "油烟扰民", "环境保护", "dept-cgj", "enforcement", W_STD, False),
    ("HB002", "施工噪声扰民", "环境保护", "dept-cgj", "enforcement", N_DAY, False),
    ("HB003", "工业废气排放", "环境保护", "dept-sthjj", "enforcement", W_STD, False),
    ("HB004", "污水直排", "环境保护", "dept-sthjj", "enforcement", W_STD, False),
    ("HB005", "露天焚烧", "环境保护", "dept-sthjj", "enforcement", N_FAST, False),
    ("HB006", "非法倾倒危险废物", "环境保护", "dept-sthjj", "enforcement", N_DAY, True),
    # 安全生产
    ("AQ001", "燃气泄漏", "安全生产", "dept-zjj", "emergency", N_EMERG, True),
    ("AQ002", "非法储存经营烟花爆竹", "安全生产", "dept-yjglj", "emergency", N_DAY, False),
    ("AQ003", "消防通道堵塞", "安全生产", "dept-yjglj", "emergency", N_DAY, False),
    ("AQ004", "危险化学品违规存放", "安全生产", "dept-yjglj", "emergency", N_FAST, True),
    ("AQ005", "小作坊安全隐患", "安全生产", "dept-yjglj", "emergency", W_STD, False),
    ("AQ006", "电动自行车违规充电", "安全生产", "dept-yjglj", "emergency", N_DAY, False),
    # 社会事务
    ("SH001", "困难群众救助", "社会事务", "dept-mzj", "social", W_SOCIAL, False),
    ("SH002", "养老服务", "社会事务", "dept-mzj", "social", W_SOCIAL, False),
    ("SH003", "散埋乱葬", "社会事务", "dept-mzj", "social", W_LONG, False),
    ("SH004", "残疾人帮扶", "社会事务", "dept-mzj", "social", W_SOCIAL, False),
    ("SH005", "邻里纠纷调解", "社会事务", "dept-sfj", "order", W_STD, False),
    # 农业农村
    ("NY001", "耕地抛荒", "农业农村", "dept-nyncj", "agriculture", W_LONG, False),
    ("NY002", "动物疫情报告", "农业农村", "dept-nyncj", "agriculture", N_FAST, True),
    ("NY003", "违规使用农药", "农业农村", "dept-nyncj", "agriculture", W_STD, False),
    ("NY004", "畜禽养殖污染", "农业农村", "dept-nyncj", "agriculture", W_STD, False),
    # 社会治安
    ("ZA001", "噪声扰民", "社会治安", "dept-gaj", "order", N_DAY, False),
    ("ZA002", "聚众赌博", "社会治安", "dept-gaj", "order", N_DAY, False),
    ("ZA003", "打架斗殴", "社会治安", "dept-gaj", "order", N_EMERG, True),
    ("ZA004", "非法营运", "社会治安", "dept-gaj", "order", W_STD, False),
    # 水域管理
    ("SL001", "非法采砂", "水域管理", "dept-slj", "enforcement", N_DAY, False),
    ("SL002", "侵占河道", "水域管理", "dept-slj", "enforcement", W_LONG, False),
    ("SL003", "防汛险情", "水域管理", "dept-slj", "emergency", N_EMERG, True),
    # 城乡建设
    ("ZJ001", "物业服务纠纷", "城乡建设", "dept-zjj", "social", W_SOCIAL, False),
    ("ZJ002", "房屋安全隐患", "城乡建设", "dept-zjj", "emergency", N_DAY2, False),
    ("ZJ003", "窨井盖缺失破损", "城乡建设", "dept-cgj", "urban", N_FAST, False),
    ("ZJ004", "建筑工地扬尘", "城乡建设", "dept-zjj", "enforcement", W_STD, False),
    # 事中事后监管 (supervision after an approval, 审批办件双推送) and 监测告警
    ("JG001", "食品经营许可事中事后监管", "市场监管", "dept-scjgj", "enforcement", W_LONG, False),
    ("JG002", "户外广告设置事中事后监管", "市容环境", "dept-cgj", "enforcement", W_LONG, False),
    ("AQ007", "烟感火警", "安全生产", "dept-yjglj", "emergency", N_EMERG, True),
    ("ZJ005", "路灯不亮", "城乡建设", "dept-cgj", "urban", W_STD, False),
]

# fmt: off
# Devolution lists (下放清单) — deliberately different per township.
DEVOLUTION: dict[str, list[str]] = {
    BAISHA: [
        *(f"SR{n:03d}" for n in range(1, 12)),
        "WJ001", "WJ003", "HB001", "HB002", "HB005",
        "SH001", "SH002", "SH004", "ZJ003", "ZJ005", "JG002",
    ],
    QINGXI: [
        "SR001", "SR002", "SR003", "SR004", "SR005", "SR006", "SR009", "SR010",
        "WJ001", "WJ002", "WJ004", "HB001", "HB005",
        "SH001", "SH002", "SH003", "SH004", "NY001", "NY003",
        "SL002", "AQ006",
    ],
    FENGLIN: [
        "SR001", "SR002", "SR003", "WJ001", "WJ004", "HB005",
        "SH001", "SH002", "SH003", "NY001", "NY004", "AQ006",
    ],
}

#: The dated history (下放清单动态调整): matters devolved, entrusted or assisted this year, one returned
#: (青溪镇 小作坊安全隐患, back to the county from 2026-09-01) and one decided for next year. ``effective_to``
#: is the first day an entry no longer applies. 带日期的下放记录：今年下放/委托/协助的事项、一项收回、一项明年生效。
DEVOLUTION_ENTRIES: list[dict[str, Any]] = [
    {"township": FENGLIN, "matter": "SC003", "mode": "devolved", "effective_from": "2026-03-01",
     "document": "青政发〔2026〕5号"},
    {"township": BAISHA, "matter": "SC004", "mode": "entrusted", "effective_from": "2026-05-01",
     "document": "青市监〔2026〕12号"},
    {"township": QINGXI, "matter": "HB004", "mode": "assist", "effective_from": "2026-07-01",
     "document": "青政办发〔2026〕33号"},
    {"township": QINGXI, "matter": "AQ005", "mode": "devolved", "effective_from": "2024-07-01",
     "effective_to": "2026-09-01", "document": "青政发〔2024〕40号"},
    {"township": FENGLIN, "matter": "SC005", "mode": "devolved", "effective_from": "2027-01-01",
     "document": "青政发〔2026〕58号"},
]

SOURCE_12345: dict[str, str] = {
    # 01 城市管理
    "010101": "SR001", "010102": "SR002", "010103": "SR003", "010104": "SR004",
    "010105": "SR005", "010106": "SR006", "010107": "SR007", "010108": "SR008",
    "010109": "SR009", "010110": "SR010",
    "010201": "WJ001", "010202": "WJ002", "010203": "WJ003",
    # 02 市场监管
    "020101": "SC001", "020102": "SC002", "020103": "SC003", "020104": "SC004", "020105": "SC005",
    "020201": "SC006",
    # 03 生态环境
    "030101": "HB001", "030102": "HB002", "030103": "HB003", "030104": "HB004",
    "030105": "HB005", "030106": "HB006",
    # 04 安全生产
    "040101": "AQ001", "040102": "AQ002", "040103": "AQ003", "040104": "AQ006",
    # 05 社会事务
    "050101": "SH001", "050102": "SH002", "050103": "SH003", "050104": "SH004", "050201": "SH005",
    # 06 农业农村
    "060101": "NY001", "060102": "NY002", "060103": "NY003", "060104": "NY004",
    # 07 社会治安
    "070101": "ZA001", "070102": "ZA002", "070103": "ZA003", "070104": "ZA004",
    # 08 水务
    "080101": "SL001", "080102": "SL002", "080103": "SL003",
    # 09 住房城乡建设
    "090101": "ZJ001", "090102": "ZJ002", "090103": "ZJ003", "090104": "ZJ004", "090105": "ZJ005",
}

# 数字城管 事件 大类-小类: the older 2-digit minor scheme and the 2026 3-digit one
# (GB/T 47678.5-2026). Some codes exist only in one scheme; lookups normalise.
# 旧版两位小类与 2026 版三位小类并存；部分编码只出现在其中一种，查询时会尝试互转。
SOURCE_CITYOPS: dict[str, str] = {
    # older scheme / 旧版
    "01-01": "WJ001", "01-02": "SR002", "01-03": "SR002", "01-07": "SR004",
    "01-09": "HB005", "01-11": "SR006",
    "02-01": "SR007",
    "03-01": "HB002", "03-02": "ZJ004", "03-03": "SR008",
    "05-01": "SR003", "05-03": "SR001", "05-04": "SR005", "05-06": "SR009",
    # 2026 scheme / 2026 版
    "01-001": "WJ001", "01-002": "SR002", "01-007": "SR004",
    "03-002": "ZJ004",
    "05-003": "SR001", "05-004": "SR005", "05-006": "SR009",
    "06-005": "ZJ005", "06-010": "ZJ003",
    "07-002": "HB004", "07-012": "HB001",
}

SOURCE_GRIDWORKER: dict[str, str] = {
    "GW-SR-01": "SR001", "GW-SR-02": "SR002", "GW-SR-03": "SR003", "GW-SR-04": "SR006",
    "GW-SR-05": "SR010",
    "GW-WJ-01": "WJ001", "GW-WJ-02": "WJ002", "GW-WJ-03": "WJ004",
    "GW-SC-01": "SC001", "GW-SC-02": "SC002",
    "GW-HB-01": "HB001", "GW-HB-02": "HB005", "GW-HB-03": "HB004",
    "GW-AQ-01": "AQ001", "GW-AQ-02": "AQ003", "GW-AQ-03": "AQ006", "GW-AQ-04": "AQ005",
    "GW-SH-01": "SH001", "GW-SH-02": "SH005", "GW-SH-03": "SH003",
    "GW-NY-01": "NY001", "GW-NY-02": "NY002", "GW-NY-03": "NY004",
    "GW-ZA-01": "ZA002", "GW-ZA-02": "ZA001",
    "GW-SL-01": "SL001", "GW-SL-02": "SL002", "GW-SL-03": "SL003",
    "GW-ZJ-01": "ZJ002",
}

#: 审批办件 双推送: 审批事项 code (government-service catalogue) → supervision matter. 审批事项 → 监管事项。
SOURCE_APPROVAL: dict[str, str] = {
    "SPJY-001": "JG001",  # 食品经营许可 → 市场监管所 事中事后监管
    "SPJY-002": "JG001",  # 仅销售预包装食品备案
    "HWGG-001": "JG002",  # 户外广告设施设置审批 → 城市管理（白沙街道下放至综合行政执法队）
}

#: 监测告警: the monitoring platform's alarm types → matters. 告警类型 → 事项。
SOURCE_ALARM: dict[str, str] = {
    "SW-HIGH": "SL003",  # 水位超警戒 → 防汛险情
    "YG-01": "AQ007",  # 烟感报警 → 烟感火警
    "JG-WY": "ZJ003",  # 井盖位移 → 窨井盖缺失破损
    "AI-ZDJY": "SR001",  # 视频AI 占道经营识别 → 占道经营
}

#: 监管时限 (working days to the first check after an approval). 审批后首次检查时限（工作日）。
SUPERVISE_DAYS: dict[str, int] = {"JG001": 10, "JG002": 15}

#: Alarm-type settings: video AI needs a human look below 0.6; water levels rise and fall for an hour.
#: 告警类型设置：视频AI 置信度低于 0.6 转人工复核；水位告警一小时内合并。
ALARM_TYPES: dict[str, dict[str, Any]] = {
    "AI-ZDJY": {"confidence_threshold": 0.6, "burst_window_minutes": 30},
    "SW-HIGH": {"confidence_threshold": 0.6, "burst_window_minutes": 60},
    "YG-01": {"confidence_threshold": 0.6, "burst_window_minutes": 10},
    "JG-WY": {"confidence_threshold": 0.6, "burst_window_minutes": 30},
}

# fmt: on

#: The grid next to 白沙小学 (used by a rule). 白沙小学周边网格。
SCHOOL_GRID = f"{BAISHA}001001"


def _rect(box: Box) -> dict[str, Any]:
    """GeoJSON Polygon of a micro-degree box, counter-clockwise. 矩形面（逆时针）。"""
    x0, x1, y0, y1 = (v / MICRO for v in box)
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _feature(code: str, name: str, level: str, parent: str | None, box: Box) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name, "level": level, "parent_code": parent},
        "geometry": _rect(box),
    }


def _cuts(lo: int, hi: int, parts: int) -> list[int]:
    """Integer cut points splitting [lo, hi] into ``parts``. 整数等分点。"""
    return [lo + (hi - lo) * k // parts for k in range(parts + 1)]


def build_divisions() -> list[dict[str, Any]]:
    """County, townships, villages and grids (grids tile villages exactly). 区划要素。"""
    features = [_feature(COUNTY_CODE, COUNTY_NAME, "county", None, COUNTY_BOX)]
    for t_suffix, t_name, _, t_box, villages in TOWNSHIPS:
        t_code = COUNTY_CODE + t_suffix
        features.append(_feature(t_code, t_name, "township", COUNTY_CODE, t_box))
        for v_suffix, v_name, v_box, (cols, rows) in villages:
            v_code = t_code + v_suffix
            features.append(_feature(v_code, v_name, "village", t_code, v_box))
            xs = _cuts(v_box[0], v_box[1], cols)
            ys = _cuts(v_box[2], v_box[3], rows)
            n = 0
            # Number grids north-west first, row by row. 自西北角起逐行编号。
            for r in reversed(range(rows)):
                for c in range(cols):
                    n += 1
                    box = (xs[c], xs[c + 1], ys[r], ys[r + 1])
                    features.append(_feature(f"{v_code}{n:03d}", f"{v_name}第{n}网格", "grid", v_code, box))
    return features


def build_units() -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """Units and township functions. 承办单位与镇街职能表。"""
    units: list[dict[str, Any]] = []
    functions: dict[str, dict[str, str]] = {}
    for t_suffix, t_name, _, _, _ in TOWNSHIPS:
        t_code = COUNTY_CODE + t_suffix
        fmap: dict[str, str] = {}
        for suffix, name, function in OFFICES:
            if t_code == BAISHA and suffix == "nync":
                continue  # 街道不设农业农村办，农业事务由经济发展办承担
            unit_id = f"{t_code}-{suffix}"
            units.append({"id": unit_id, "name": f"{t_name}{name}", "kind": "township_office", "township_code": t_code})
            fmap[function] = unit_id
        if t_code == BAISHA:
            fmap["agriculture"] = f"{t_code}-jjfz"
            unit_id = f"{t_code}-csgl"
            units.append(
                {"id": unit_id, "name": f"{t_name}城市管理办公室", "kind": "township_office", "township_code": t_code}
            )
            fmap["urban"] = unit_id
        unit_id = f"{t_code}-zfd"
        units.append(
            {"id": unit_id, "name": f"{t_name}综合行政执法队", "kind": "enforcement_team", "township_code": t_code}
        )
        fmap["enforcement"] = unit_id
        functions[t_code] = dict(sorted(fmap.items()))
    for unit_id, name, department, covers in AGENCIES:
        units.append(
            {"id": unit_id, "name": name, "kind": "stationed_agency", "department": department, "covers": covers}
        )
    for unit_id, name in DEPARTMENTS:
        units.append({"id": unit_id, "name": name, "kind": "county_department", "department": unit_id})
    return units, functions


def build_matters() -> list[dict[str, Any]]:
    """The matter catalogue. 事项清单。"""
    out = []
    for code, name, group, department, function, ((normal, urgent, critical), basis), escalate in MATTERS:
        out.append(
            {
                "code": code,
                "name": name,
                "group": group,
                "department": department,
                "township_function": function,
                "deadlines": {"normal": normal, "urgent": urgent, "critical": critical},
                "time_basis": basis,
                "auto_escalate_when_overdue": escalate,
                **({"supervise_within_days": SUPERVISE_DAYS[code]} if code in SUPERVISE_DAYS else {}),
            }
        )
    return out


def build_rules() -> list[dict[str, Any]]:
    """Override rules. 派遣规则。"""
    rules: list[dict[str, Any]] = []
    police = {BAISHA: "pz-pcs-baisha", QINGXI: "pz-pcs-qingxi", FENGLIN: "pz-pcs-fenglin"}
    for priority, (t_suffix, t_name, short, _, _) in enumerate(TOWNSHIPS, start=10):
        t_code = COUNTY_CODE + t_suffix
        rules.append(
            {
                "id": f"gas-{short}",
                "priority": priority,
                "description": f"{t_name}涉燃气诉求：应急管理办公室主办，派出所协办",
                "conditions": {"township": [t_code], "keywords": ["燃气", "煤气", "液化气"]},
                "action": {"unit": f"{t_code}-yjgl", "cohandlers": [police[t_code]]},
            }
        )
    rules.append(
        {
            "id": "baisha-critical",
            "priority": 20,
            "description": "白沙街道特急件：综合行政执法队 1 小时内响应",
            "conditions": {"township": [BAISHA], "urgency": ["critical"]},
            "action": {"unit": f"{BAISHA}-zfd", "deadline_hours": 1},
        }
    )
    rules.append(
        {
            "id": "sand-mining",
            "priority": 30,
            "description": "青溪镇、枫林镇非法采砂：县水利局主办，青溪自然资源和规划所协办",
            "conditions": {"matter": ["SL001"], "township": [QINGXI, FENGLIN]},
            "action": {"unit": "dept-slj", "cohandlers": ["pz-zrzys-qingxi"]},
        }
    )
    rules.append(
        {
            "id": "baisha-praise",
            "priority": 40,
            "description": "白沙街道 12345 表扬件转党政办公室",
            "conditions": {"township": [BAISHA], "source": ["12345"], "appeal_type": ["praise"]},
            "action": {"unit": f"{BAISHA}-dzb", "deadline_hours": 40},
        }
    )
    rules.append(
        {
            "id": "school-vendors",
            "priority": 50,
            "description": "白沙小学周边网格：占道经营、无证摊贩 4 小时内处置",
            "conditions": {"grid": [SCHOOL_GRID], "matter": ["SR001", "SR003"], "urgency": ["normal", "urgent"]},
            "action": {"deadline_hours": 4},
        }
    )
    return rules


def build_demo() -> dict[str, Any]:
    """The whole demo bundle as plain JSON data. 完整的示范数据包。"""
    units, functions = build_units()
    return {
        "version": 1,
        "county_code": COUNTY_CODE,
        "name": COUNTY_NAME,
        "divisions": {"type": "FeatureCollection", "features": build_divisions()},
        "units": units,
        "matters": build_matters(),
        "devolution": DEVOLUTION,
        "devolution_entries": DEVOLUTION_ENTRIES,
        "township_functions": functions,
        "source_mappings": {
            "12345": SOURCE_12345,
            "cityops": SOURCE_CITYOPS,
            "gridworker": SOURCE_GRIDWORKER,
            "approval": SOURCE_APPROVAL,
            "alarm": SOURCE_ALARM,
        },
        "rules": build_rules(),
        "alarm_types": ALARM_TYPES,
    }


def render(bundle: dict[str, Any]) -> str:
    """Stable JSON text (2-space indent, UTF-8, trailing newline). 稳定的 JSON 文本。"""
    return json.dumps(bundle, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Validate the bundle and write (or ``--check``) the output. 校验并写出（或检查）。"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write county.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if the output file is stale")
    args = parser.parse_args(argv)

    from shared.jurisdiction import parse_bundle

    bundle = build_demo()
    _, problems = parse_bundle(bundle)
    if problems:
        for problem in problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return 2
    text = render(bundle)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run deploy/demo/make_demo.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    grids = sum(1 for f in bundle["divisions"]["features"] if f["properties"]["level"] == "grid")
    print(
        f"wrote {args.output}: {grids} grids, {len(bundle['units'])} units, "
        f"{len(bundle['matters'])} matters, {len(bundle['rules'])} rules"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
