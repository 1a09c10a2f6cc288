"""How a function is called: one provider per function ``type``."""
