"""The keys of the screen in front, wrapped onto as many rows as 80 columns need.

Textual's Footer keeps to one row and scrolls what does not fit off the edge; an
operator over SSH at 80x24 must see every key without a mouse.
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $footer-background;
        color: $footer-description-foreground;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._items: list[tuple[str, str, bool]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen:
            return
        seen: set[str] = set()
        items: list[tuple[str, str, bool]] = []
        extra = {self.app.COMMAND_PALETTE_BINDING: "palette", "ctrl+q": "quit"}
        tail: list[tuple[str, str, bool]] = []
        for key, (_node, binding, enabled, _tooltip) in screen.active_bindings.items():
            if key in extra and not binding.show:
                tail.append((self.app.get_key_display(binding), extra[key], enabled))
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            items.append((self.app.get_key_display(binding), binding.description, enabled))
        items += tail
        if items != self._items:
            self._items = items
            self.refresh(layout=True)

    def _lines(self, width: int) -> list[list[tuple[str, str, bool]]]:
        lines: list[list[tuple[str, str, bool]]] = [[]]
        used = 0
        for item in self._items:
            size = len(item[0]) + 1 + len(item[1])
            if lines[-1] and used + 2 + size > width:
                lines.append([])
                used = 0
            used += size + (2 if lines[-1] else 0)
            lines[-1].append(item)
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        rows = []
        for line in self._lines(self.content_size.width):
            parts = [
                Content.assemble((key, "bold $footer-key-foreground" if on else "dim"), " " + text)
                for key, text, on in line
            ]
            rows.append(Content("  ").join(parts))
        return Content("\n").join(rows)
