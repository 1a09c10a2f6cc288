"""Configuration entities (pure): functions, subscriptions, event types, CORS."""

from __future__ import annotations

from eventgateway.model.entities import (
    Cors,
    EventType,
    Function,
    Subscription,
    decode_entity,
    encode_entity,
)

__all__ = ["Cors", "EventType", "Function", "Subscription", "decode_entity", "encode_entity"]
