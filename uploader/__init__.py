"""Moves accepted cases (JSON and evidence files) off the box: a durable outbox and MQTT.

Knows nothing of streams, detectors or the Case type: it stores and sends bytes.
"""

from uploader.mqtt import MqttSettings, MqttUploader
from uploader.outbox import Outbox, OutboxItem

__all__ = ["MqttSettings", "MqttUploader", "Outbox", "OutboxItem"]
