"""Generate the demo county's people, teams and rosters / 生成示范县人员、编组与排班.

Writes ``deploy/demo/forces.json`` from ``deploy/demo/county.json`` (the 力量调度 document loaded by
``make run`` through ``PUT /v1/forces/330127`` on dispatch): every township's enforcement team
(综合行政执法队) gets a leader, six members, two grid workers per village-sized block of grids, two
teams (中队) and a 24-hour roster (day shift 08:00–20:00, night shift 20:00–08:00 across midnight);
township offices get three members on working days (08:30–17:30, the working calendar), stationed
agencies three members in a 24-hour rotation. Member ids are ``<unit>-m<nn>``; the dev tokens
``dev-member-qingxi-zfd-leader`` / ``dev-member-qingxi-zfd`` are 330127101-zfd-m01 / -m02.

Deterministic (no randomness, no clock). 输出确定。

Usage / 用法::

    .venv/bin/python deploy/demo/make_forces.py            # write forces.json
    .venv/bin/python deploy/demo/make_forces.py --check    # exit 1 if forces.json is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUTPUT = HERE / "forces.json"
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = ["建国", "伟", "芳", "秀英", "敏", "静", "丽", "强", "磊", "军"]
GIVEN += ["洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "霞", "平"]


def _name(k: int) -> str:
    return SURNAMES[k * 7 % len(SURNAMES)] + GIVEN[k * 3 % len(GIVEN)]


def _phone(k: int) -> str:
    return f"139{(57_000_000 + k * 7919) % 100_000_000:08d}"


def build(county: dict[str, Any]) -> dict[str, Any]:
    """The document for ``county`` (the jurisdiction bundle). 由辖区数据包生成人员文档。"""
    grids_of: dict[str, list[str]] = {}
    for f in county["divisions"]["features"]:
        p = f["properties"]
        if p["level"] == "grid":
            grids_of.setdefault(p["code"][:9], []).append(p["code"])
    members: list[dict[str, Any]] = []
    teams: list[dict[str, Any]] = []
    shifts: list[dict[str, Any]] = []
    k = 0

    def add(unit: str, n: int, role: str, grids: list[str] | None = None) -> str:
        nonlocal k
        k += 1
        mid = f"{unit}-m{n:02d}"
        members.append(
            {
                "member_id": mid,
                "unit": unit,
                "name": _name(k),
                "role": role,
                "grids": grids or [],
                "terminal_id": f"T-{unit}-{n:02d}",
                "phone": _phone(k),
            }
        )
        return mid

    for u in sorted(county["units"], key=lambda u: u["id"]):
        uid, kind = u["id"], u["kind"]
        if kind == "enforcement_team":
            township = uid[:9]
            crew = [add(uid, 1, "leader")] + [add(uid, n, "member") for n in range(2, 8)]
            grids = sorted(grids_of.get(township, []))
            half = (len(grids) + 1) // 2
            crew += [add(uid, 8, "grid_worker", grids[:half]), add(uid, 9, "grid_worker", grids[half:])]
            day, night = crew[:1] + crew[1:4] + crew[7:8], crew[4:7] + crew[8:9]
            teams.append({"team_id": f"{uid}-t1", "unit": uid, "name": "一中队", "members": crew[1:4]})
            teams.append({"team_id": f"{uid}-t2", "unit": uid, "name": "二中队", "members": crew[4:7]})
            shifts.append({"unit": uid, "label": "白班", "start": "08:00", "end": "20:00", "members": day})
            shifts.append({"unit": uid, "label": "夜班", "start": "20:00", "end": "08:00", "members": night})
        elif kind == "township_office":
            crew = [add(uid, 1, "leader"), add(uid, 2, "member"), add(uid, 3, "member")]
            shifts.append(
                {
                    "unit": uid,
                    "label": "工作日",
                    "start": "08:30",
                    "end": "17:30",
                    "days": "working_days",
                    "members": crew,
                }
            )
            shifts.append({"unit": uid, "label": "休息日值班", "start": "09:00", "end": "17:00",
                           "days": "rest_days", "members": crew[:1]})  # fmt: skip
        elif kind == "stationed_agency":
            crew = [add(uid, 1, "leader"), add(uid, 2, "member"), add(uid, 3, "member")]
            shifts.append({"unit": uid, "label": "24小时值守", "start": "08:00", "end": "08:00", "members": crew})
    return {"county_code": county["county_code"], "members": members, "teams": teams, "shifts": shifts}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if forces.json is stale")
    args = parser.parse_args(argv)
    county = json.loads((HERE / "county.json").read_text(encoding="utf-8"))
    text = render(build(county))
    if args.check:
        if (OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else "") != text:
            print(f"{OUTPUT} is stale: run deploy/demo/make_forces.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
