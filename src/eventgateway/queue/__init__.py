"""The hand-off between accepting an event and delivering it."""
