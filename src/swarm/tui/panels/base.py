"""The panel contract: a bordered Static that draws itself from a `View`.

A new panel is one module with one `Panel` subclass, listed in `panels.PANELS`. `applies`
keeps panels that mean nothing for a run (hazards in a learning run) out of the way.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.widgets import Static

from swarm.tui.view import View

__all__ = ["Panel", "figure"]


class Panel(Static):
    title: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", classes="panel", **kwargs)
        self.border_title = self.title

    @classmethod
    def applies(cls, view: View) -> bool:
        return True

    def show(self, view: View) -> None:
        """Redraw from the view; panels keep no state of their own.

        Status and rows may come from any client on a broker: a figure of the wrong type
        or a missing key is shown as such in the panel, and never stops the dashboard.
        """
        try:
            drawn = self.draw(view, max(20, self.content_size.width or 36))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            drawn = Text(f"cannot draw from this run's data: {type(exc).__name__}: {exc}", "red")
        self.update(drawn)

    @property
    def chart_rows(self) -> int:
        """Chart height for the terminal: 3 rows in 80x24, up to 10 in a tall one."""
        height = self.app.size.height if self.is_attached else 24
        return max(3, min(10, (height - 18) // 2))

    def draw(self, view: View, width: int) -> Any:
        raise NotImplementedError


def figure(value: Any, digits: int = 3) -> str:
    """A number for a narrow cell: '-' when unknown, thousands separators, k/M suffixes."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1e6:
            return f"{value / 1e6:.1f}M"
        if abs(value) >= 1e4:
            return f"{value / 1e3:.1f}k"
        return f"{value:.{digits}g}"
    if isinstance(value, int) and abs(value) >= 1_000_000:
        return f"{value / 1e6:.1f}M"
    return f"{value:,}" if isinstance(value, int) else str(value)
