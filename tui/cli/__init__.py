"""The headless command line: `zapvisor <command> [--json]`."""

from __future__ import annotations
