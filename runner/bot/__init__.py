"""The session's bot: inbound text → the provider → a paced reply (see bot.py)."""
