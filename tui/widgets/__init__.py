"""widgets of the terminal app."""
