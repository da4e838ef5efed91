"""The per-session worker process that supervisord runs: one WhatsApp link, one port."""

from __future__ import annotations
