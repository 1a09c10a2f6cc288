"""Configuration storage: one interface, embedded (SQLite, memory) and cluster backends."""
