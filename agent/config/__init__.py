"""The configuration: the YAML schema (`schema`, `sources`, `rules`), how a file is read (`loading`:
`${VAR}`, `builtin:` names from `resources`, relative paths, errors that name the key)."""

from agent.config.loading import ConfigError
from agent.config.privacy import PrivacyConfig
from agent.config.rules import CasesConfig, CaseType, ColocatedConfig, RuleConfig
from agent.config.schema import (
    AgentConfig,
    CropCheckConfig,
    DetectorConfig,
    DetectorEntry,
    EvidenceConfig,
    GridConfig,
    TilingConfig,
    UploaderConfig,
    default_config,
    load_config,
    load_receiver_config,
    parse_config,
)
from agent.config.sources import InboxConfig, ReferencePoint, SourceConfig, ZoneConfig, source_id_for
from protocol.broker import MqttConfig

__all__ = [
    "AgentConfig",
    "CaseType",
    "CasesConfig",
    "ColocatedConfig",
    "ConfigError",
    "CropCheckConfig",
    "DetectorConfig",
    "DetectorEntry",
    "EvidenceConfig",
    "GridConfig",
    "InboxConfig",
    "MqttConfig",
    "PrivacyConfig",
    "ReferencePoint",
    "RuleConfig",
    "SourceConfig",
    "TilingConfig",
    "UploaderConfig",
    "ZoneConfig",
    "default_config",
    "load_config",
    "load_receiver_config",
    "parse_config",
    "source_id_for",
]
