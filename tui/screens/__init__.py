"""screens of the terminal app."""
