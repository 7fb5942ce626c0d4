"""Models shared by every function. No I/O here."""
