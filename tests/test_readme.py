"""The README's tour runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_code() -> str:
    text = README.read_text()
    tour = text.split("## A 60-second tour", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", tour, re.S))


def test_the_tour_runs():
    code = tour_code()
    assert "StochasticMux" in code and "state_dict" in code
    namespace: dict[str, object] = {"__name__": "readme_tour"}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["resumed"] is not None
