"""The arguments of `zapvisor secret NAME openai|gemini`: a session's own provider key
for its bot. The handler is in tui/cli/bot_commands.py, imported only when it runs."""

from __future__ import annotations

from tui.cli.registry import SubParsers, add_command

KEY_EPILOG = """\
The key goes to secrets/NAME.PROVIDER-key (0600) on the session's host and wins
over the host's OPENAI_KEY / GEMINI_KEY. It is never printed, logged or stored.
examples:
  zapvisor secret cliente-001 openai < openai.key
  zapvisor secret cliente-001 gemini --remove"""


def register(sub: SubParsers) -> None:
    p = add_command(
        sub,
        "secret",
        "set a session's own API key for its bot (read from stdin, never printed)",
        "tui.cli.bot_commands:secret",
        epilog=KEY_EPILOG,
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("provider", choices=("openai", "gemini"), metavar="openai|gemini")
    p.add_argument(
        "--remove", action="store_true", help="delete the session's own key (the host's applies)"
    )
