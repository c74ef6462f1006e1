"""Masking personal numbers in free text (自由文本个人信息屏蔽): real-looking complaint text."""

from __future__ import annotations

import pytest

from services.intake.pii import mask_personal_numbers


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我电话13812345678，请回电", "我电话138****5678，请回电"),
        ("联系方式：138 1234 5678（王先生）", "联系方式：138****5678（王先生）"),
        ("联系 +86 139-0571-2345 或 86 15912345678", "联系 139****2345 或 159****5678"),
        ("手机１３５７１２３４５６７，晚上打", "手机１３５****４５６７，晚上打"),
        ("身份证号330127198805061234，申请人本人", "身份证号330***********1234，申请人本人"),
        ("身份证：33012719900101123X。", "身份证：330***********123X。"),
        ("证件号11010520001231001x", "证件号110***********001x"),
        ("投诉人张三 13305710001 身份证 330127197001010011", "投诉人张三 133****0001 身份证 330***********0011"),
    ],
)
def test_mobile_and_id_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_personal_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "工单号2026120400001，流水号 20261204123456789012",  # long reference numbers
        "订单 138123456789 共十二位",  # 12 digits: not a mobile
        "坐标 119.0452,29.6021，门牌12号，3栋2单元1201室",
        "座机 0571-88001234 转 8021",  # landlines are not masked
        "发生于2026-11-24 08:30，持续约45分钟",
        "统一社会信用代码 91330127MA2H7XYZ8K",
        "车牌浙A12345，限速60",
        "金额 12000000000 元",  # starts with 12: no mobile starts so
    ],
)
def test_other_numbers_stay(text: str) -> None:
    assert mask_personal_numbers(text) == text
