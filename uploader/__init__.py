"""Moves accepted cases (JSON and evidence files) off the box: a durable outbox and MQTT.

Knows nothing of streams, detectors or the Case type: it stores and sends bytes.
"""

from uploader.connection import MqttSettings
from uploader.mqtt import MqttUploader, UploadPolicy
from uploader.outbox import Outbox, OutboxItem
from uploader.protocol import Topics

__all__ = ["MqttSettings", "MqttUploader", "Outbox", "OutboxItem", "Topics", "UploadPolicy"]
