"""Delivering events to functions: one attempt (invoke) and the lease loop (dispatcher)."""
