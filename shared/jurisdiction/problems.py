"""Problems found in a bundle 数据包问题: each with a JSON-pointer-like path.

Validation lists *every* problem, never just the first. 校验列出全部问题及其路径。
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

__all__ = ["BundleInvalidError", "Problem", "join_path", "problems_from_validation_error"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a bundle, with a JSON-pointer-like path.

    数据包中的一个问题，``path`` 形如 ``divisions.features[12].properties.parent_code``。
    """

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form. 可直接序列化的字典。"""
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class BundleInvalidError(ValueError):
    """Raised when a snapshot is built from an invalid bundle or rule set. 数据包无效。"""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} problem(s): {shown}{more}")


def join_path(*parts: str | int) -> str:
    """Join path parts: ints become ``[i]``, strings ``.name``. 拼接路径。"""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def problems_from_validation_error(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn pydantic errors into problems with our path syntax. pydantic 错误转问题。"""
    problems: list[Problem] = []
    for err in exc.errors():
        parts: list[str | int] = [prefix] if prefix else []
        parts.extend(p if isinstance(p, int) else str(p) for p in err["loc"])
        problems.append(Problem(join_path(*parts) or "$", err["msg"]))
    return problems
