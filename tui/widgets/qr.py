"""A pairing QR drawn with half-blocks (or, compact, sextants), or the size it needs
when it does not fit.

Cells are painted black on white explicitly, whatever the theme, so a phone reads the
same code on dark and light terminals. A QR that does not fit is never drawn cropped
(a cropped code does not scan): the widget says how big the terminal must be instead.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.events import Resize
from textual.reactive import reactive
from textual.widget import Widget

from ecosystem import qr

INK = Style(color="#000000", bgcolor="#ffffff")


class QRCode(Widget):
    DEFAULT_CSS = """
    QRCode {
        width: 1fr;
        height: 1fr;
        content-align: center middle;
    }
    QRCode.-too-small {
        color: $warning;
        text-style: bold;
    }
    """

    payload: reactive[str | None] = reactive(None)
    session: reactive[str] = reactive("NAME")
    compact: reactive[bool] = reactive(False)
    """Sextants, 2x3 modules per cell (a WhatsApp code in 31x21: fits 80x24), instead of
    half-blocks (61x31); the operator's choice, as not every font has sextants."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[str] = []

    def watch_payload(self) -> None:
        self._draw()

    def watch_compact(self) -> None:
        self._draw()

    def _draw(self) -> None:
        payload = self.payload
        self._lines = qr.terminal_lines(payload, compact=self.compact) if payload else []
        self._mark_fit()
        self.refresh()

    def on_resize(self, _: Resize) -> None:
        self._mark_fit()

    def _mark_fit(self) -> None:
        self.set_class(bool(self._lines) and not self.fits, "-too-small")

    @property
    def needed(self) -> tuple[int, int]:
        """(columns, rows) the current code takes; (0, 0) without one."""
        return (len(self._lines[0]), len(self._lines)) if self._lines else (0, 0)

    @property
    def fits(self) -> bool:
        cols, rows = self.needed
        size = self.content_size
        return cols <= size.width and rows <= size.height

    def render(self) -> Text:
        if not self._lines:
            return Text("no QR code right now")
        if self.fits:
            return Text("\n".join(self._lines), style=INK, no_wrap=True, end="")
        cols, rows = self.needed
        size, screen = self.content_size, self.screen.size
        want_w = max(screen.width, cols + screen.width - size.width)
        want_h = max(screen.height, rows + screen.height - size.height)
        return Text(
            f"This QR code needs {cols}x{rows} cells: make the terminal at least "
            f"{want_w}x{want_h} (it is {screen.width}x{screen.height}), or zoom out.\n"
            "A cropped code would not scan, so it is not drawn.\n\n"
            + (
                ""
                if self.compact
                else "Press c for the compact QR (half the size; it needs a font with\n"
                "Unicode sextants). "
            )
            + "Or press p to link with the phone number instead (a code to type),\n"
            "or write the QR as an image and open that:\n"
            f"zapvisor qr {self.session} --png qr.png",
            justify="center",
        )
