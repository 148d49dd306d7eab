"""The platform side, apart from the agent: the reference receiver that stores and acknowledges what
agents send. It imports only `protocol/` of this project, as a city's own platform would."""

from cityplatform.config import ReceiverConfig
from cityplatform.receiver import Receiver

__all__ = ["Receiver", "ReceiverConfig"]
