"""Errors raised while building or reading the wire contract."""

from __future__ import annotations


class ContractError(Exception):
    """Base of every contract error: input that does not follow lockerhub's MQTT contract."""


class TopicError(ContractError):
    """A topic name or identifier that is not part of the topic tree."""


class PayloadError(ContractError):
    """A payload that cannot be accepted.

    ``reason`` is a short, bounded token (``oversized``, ``undecodable``, ``invalid``,
    ``content_type``) fit for a metric label; the message is for logs and never holds payload bytes.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
