"""Moves accepted cases (JSON and evidence files) off the box: a durable outbox and MQTT.

Knows nothing of streams, detectors or the Case type: it stores and sends bytes.
"""

from protocol.connection import MqttSettings
from protocol.messages import Topics
from uploader.mqtt import MqttUploader, UploadPolicy
from uploader.outbox import Outbox, OutboxItem

__all__ = ["MqttSettings", "MqttUploader", "Outbox", "OutboxItem", "Topics", "UploadPolicy"]
