"""The README's Python example runs as printed and prints what its comment says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_example_runs_and_prints_what_it_says() -> None:
    [block] = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    promised = re.search(r"#.*: (\S+)\s*$", block.strip().splitlines()[-1])
    assert promised, "the example's last line says what it prints"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    assert out.getvalue().strip() == promised.group(1)
