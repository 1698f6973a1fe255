"""The lockerhub wire contract: generated messages (``lockerhub.v1``), topic names, payload codec.

Edge agents, the hub and the simulators all import their MQTT and gRPC contract from here and
nowhere else.
"""

from lockerhub.clock import Clock, ManualClock, SystemClock
from lockerhub.codec import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    DEFAULT_MAX_PAYLOAD_BYTES,
    decode,
    encode,
    encode_json,
)
from lockerhub.codes import generate_code, hash_code, verify_code
from lockerhub.errors import ContractError, PayloadError, TopicError
from lockerhub.topics import TOPIC_ROOT, Kind, Topic, TopicSpec, spec

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "TOPIC_ROOT",
    "Clock",
    "ContractError",
    "Kind",
    "ManualClock",
    "PayloadError",
    "SystemClock",
    "Topic",
    "TopicError",
    "TopicSpec",
    "decode",
    "encode",
    "encode_json",
    "generate_code",
    "hash_code",
    "spec",
    "verify_code",
]
