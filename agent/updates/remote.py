"""Signed updates from the platform over MQTT (protocol/updates.py): check the manifest's signature,
gather the chunks (or read the named file inside `updates.local_dir`), check the sha256, store the
bytes under names of our own, then apply them on the main thread as a reload and answer on the ack
topic. Messages arrive on the uploader's network thread; nothing slow runs there."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from agent.config import AgentConfig, ConfigError
from agent.updates.check import check_config, check_config_text
from agent.updates.reload import Outcome, Reloader
from protocol.files import write_atomic
from protocol.messages import CHUNK_BYTES
from protocol.updates import UPDATE_ID, BadUpdate, Manifest, make_update_ack, parse_chunk, parse_manifest
from uploader import MqttUploader

log = logging.getLogger(__name__)

Submit = Callable[[Callable[[], None]], None]  # runs a job on the main thread, which owns the sources


@dataclass
class _Transfer:
    """An update whose manifest held, while its chunks arrive into a file of its own."""

    manifest: Manifest
    part: Path
    received: set[int] = field(default_factory=set)


class RemoteUpdates:
    """Listens on {prefix}/{agent}/updates/ through `uploader`; applies through `reloader` via `submit`."""

    def __init__(self, reloader: Reloader, uploader: MqttUploader, submit: Submit, base_dir: Path) -> None:
        self.reloader = reloader
        self.uploader = uploader
        self.submit = submit
        self.base_dir = base_dir  # relative paths in a received configuration resolve here, as in the local file
        self.topics = uploader.topics
        self.incoming = reloader.folder / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        for leftover in self.incoming.glob("*.part"):  # a transfer a restart broke off: the platform sends again
            leftover.unlink()
        self._applied_log = reloader.folder / "applied-updates.txt"
        self._transfer: _Transfer | None = None
        uploader.route(self.topics.updates_manifest, self._on_manifest)
        uploader.route(self.topics.updates_chunks, self._on_chunk)

    # --- network thread -----------------------------------------------------------------------------

    def _on_manifest(self, message: mqtt.MQTTMessage) -> None:
        settings = self.reloader.config.updates
        platform_pem = settings.platform_key.read_bytes() if settings.platform_key else b""
        try:
            manifest = parse_manifest(message.payload, self.reloader.config.agent_id, platform_pem)
            if manifest.update_id in self._applied():
                raise BadUpdate(
                    f"update {manifest.update_id} was applied before; send a new update_id", manifest.update_id
                )
        except BadUpdate as exc:
            log.warning("update refused: %s", exc.reason)
            if exc.update_id:
                self._ack(exc.update_id, None, "rejected", exc.reason)
            return
        self._drop_transfer()
        if manifest.local_path is not None:
            try:
                data = self._read_local(manifest)
            except BadUpdate as exc:
                log.warning("update %s refused: %s", manifest.update_id, exc.reason)
                self._ack(manifest.update_id, manifest.kind, "rejected", exc.reason)
                return
            self._ack(manifest.update_id, manifest.kind, "accepted", version=manifest.version)
            self._store_and_submit(manifest, data)
            return
        part = self.incoming / f"{manifest.update_id}.part"
        with open(part, "wb") as fh:
            fh.truncate(manifest.bytes)
        self._transfer = _Transfer(manifest, part)
        log.info(
            "update %s (%s, %d bytes) signed by the platform: receiving",
            manifest.update_id,
            manifest.kind,
            manifest.bytes,
        )
        self._ack(manifest.update_id, manifest.kind, "accepted", version=manifest.version)

    def _on_chunk(self, message: mqtt.MQTTMessage) -> None:
        update_id = message.topic.rsplit("/", 1)[-1]
        transfer = self._transfer
        if transfer is None or transfer.manifest.update_id != update_id:
            if UPDATE_ID.fullmatch(update_id):
                log.warning("update %s: chunk without a valid manifest before it; dropped", update_id)
            return
        manifest = transfer.manifest
        try:
            index = parse_chunk(message.payload, message.properties, manifest)
        except BadUpdate as exc:
            log.warning("update %s refused: %s", update_id, exc.reason)
            self._drop_transfer()
            self._ack(update_id, manifest.kind, "rejected", exc.reason + "; send the update again")
            return
        with open(transfer.part, "r+b") as fh:
            fh.seek(index * CHUNK_BYTES)
            fh.write(message.payload)
        transfer.received.add(index)
        if len(transfer.received) < manifest.chunks:
            return
        data = transfer.part.read_bytes()
        self._drop_transfer()
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            reason = "the bytes received do not match the manifest's sha256; send the update again"
            log.warning("update %s refused: %s", update_id, reason)
            self._ack(update_id, manifest.kind, "rejected", reason)
            return
        self._store_and_submit(manifest, data)

    def _read_local(self, manifest: Manifest) -> bytes:
        """The file a manifest names on the box, only inside updates.local_dir and only if its hash holds."""
        local_dir = self.reloader.config.updates.local_dir
        if local_dir is None:
            raise BadUpdate("local_path given but updates.local_dir is not set on the box; send the bytes in chunks")
        path = Path(manifest.local_path or "")
        resolved = (local_dir / path).resolve()
        if not resolved.is_relative_to(local_dir.resolve()) or not resolved.is_file():
            raise BadUpdate(f"local_path {str(path)[:200]!r} is not a file inside updates.local_dir")
        data = resolved.read_bytes()
        if len(data) != manifest.bytes or hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise BadUpdate(f"local_path {str(path)[:200]!r} does not match the manifest's bytes and sha256")
        return data

    def _store_and_submit(self, manifest: Manifest, data: bytes) -> None:
        """Keep the checked bytes under a name made of their hash, then apply them on the main thread."""
        state_dir = self.reloader.config.state_dir
        folder = state_dir / "models" if manifest.kind == "model" else self.reloader.folder / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{manifest.sha256}{'.onnx' if manifest.kind == 'model' else '.yaml'}"
        write_atomic(path, data)
        self.submit(lambda: self._apply(manifest, path))

    # --- main thread --------------------------------------------------------------------------------

    def _apply(self, manifest: Manifest, path: Path) -> None:
        origin = f"update {manifest.update_id}"
        extra: dict[str, Any] = {"version": manifest.version}
        try:
            if manifest.kind == "config":
                text = path.read_bytes().decode("utf-8")
                config, detectors = check_config_text(text, self.base_dir, origin)
            else:
                text = None
                config, detectors = check_config(with_model(self.reloader.config, path), origin)
        except (ConfigError, UnicodeDecodeError) as exc:
            outcome = self.reloader.reject(origin, str(exc))
        else:
            outcome = self.reloader.apply(config, detectors, text, origin)
        if outcome.status in ("applied", "unchanged"):
            self._record_applied(manifest.update_id)
            if manifest.kind == "model":
                extra["model_version"] = self.reloader.detectors[0].detector.version
        self._ack(manifest.update_id, manifest.kind, _ack_status(outcome), outcome.reason, **extra)

    # --- both -----------------------------------------------------------------------------------------

    def _ack(self, update_id: str, kind: str | None, status: str, reason: str = "", **extra: Any) -> None:
        payload = make_update_ack(update_id, kind, status, reason, **extra)
        self.uploader.connection.client.publish(self.topics.updates_ack, payload, qos=1)

    def _drop_transfer(self) -> None:
        if self._transfer is not None:
            self._transfer.part.unlink(missing_ok=True)
            self._transfer = None

    def _applied(self) -> set[str]:
        try:
            return set(self._applied_log.read_text().split())
        except FileNotFoundError:
            return set()

    def _record_applied(self, update_id: str) -> None:
        with open(self._applied_log, "a") as fh:
            fh.write(update_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _ack_status(outcome: Outcome) -> str:
    return "applied" if outcome.status == "unchanged" else outcome.status


def with_model(config: AgentConfig, path: Path) -> AgentConfig:
    """`config` with the model at `path` for its one detector. A model update names no detector, so with
    several in `detectors:` it is refused: a configuration update says which entry gets the new file."""
    if config.detector is not None:
        return config.model_copy(update={"detector": config.detector.model_copy(update={"model": path})})
    if len(config.detectors) == 1:
        return config.model_copy(update={"detectors": [config.detectors[0].model_copy(update={"model": path})]})
    ids = ", ".join(entry.id for entry in config.detectors)
    raise ConfigError(
        f"a model update names no detector, and this agent runs {len(config.detectors)} ({ids}); "
        "send a configuration update whose detectors[].model points at the new file"
    )
