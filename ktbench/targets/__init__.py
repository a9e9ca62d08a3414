"""Targets: what the bench tests against (model), the one reader of targets files, the one TOML writer."""

from ktbench.core.errors import BenchError, TargetConfigError
from ktbench.core.secret import Secret
from ktbench.targets.model import (
    BasicCredential,
    Credential,
    MtlsCredential,
    SmartBackendCredential,
    Target,
    TlsSettings,
)
from ktbench.targets.reader import (
    TARGETS_ENV_VAR,
    TargetsFile,
    check_url,
    load_targets_file,
    looks_like_url,
    parse_targets,
    resolve_target,
    substitute_env,
)
from ktbench.targets.writer import target_table, write_targets_file

__all__ = [
    "TARGETS_ENV_VAR", "BasicCredential", "BenchError", "Credential", "MtlsCredential", "Secret",
    "SmartBackendCredential", "Target", "TargetConfigError", "TargetsFile", "TlsSettings", "check_url",
    "load_targets_file", "looks_like_url", "parse_targets", "resolve_target", "substitute_env", "target_table",
    "write_targets_file",
]
