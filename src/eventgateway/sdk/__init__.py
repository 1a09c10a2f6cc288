"""The eventgateway SDK: what functions and clients import; no server code.

For now: :class:`WebhookVerifier` checks the Standard Webhooks signatures the gateway puts
on deliveries to functions with ``signingSecrets``.
"""

from __future__ import annotations

from eventgateway.sdk.webhooks import WebhookVerificationError, WebhookVerifier, generate_secret

__all__ = ["WebhookVerificationError", "WebhookVerifier", "generate_secret"]
