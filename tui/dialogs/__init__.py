"""dialogs of the terminal app."""
