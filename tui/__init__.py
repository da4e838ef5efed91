"""zapvisor's two faces: the Textual terminal app and the headless CLI."""

from __future__ import annotations
