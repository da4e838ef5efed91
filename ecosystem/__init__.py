"""zapvisor's core: settings, models, stores, supervisord control and the orchestrator.

This package never imports a UI toolkit; the terminal app and the headless CLI in
``tui/`` and the per-session worker in ``runner/`` are built on top of it.
"""

from __future__ import annotations

__version__ = "0.1.0"
