"""The Databricks PAT scope catalogue and the audit-log service -> scope map, kept as data.

Edit the two tables below when Databricks confirms (or renames) a scope or an audit service.
Status of a scope name:

- ``confirmed``: documented by Databricks;
- ``reported``: seen in the field, not in the documentation yet;
- ``unconfirmed``: our best guess; change it freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

ScopeStatus = Literal["confirmed", "reported", "unconfirmed"]

# --- the catalogue: (name, label, status) ------------------------------------------------------------------
_CATALOGUE: tuple[tuple[str, str, ScopeStatus], ...] = (
    ("all-apis", "All APIs (full access)", "confirmed"),
    ("authentication", "Authentication (can create new tokens)", "confirmed"),
    ("sql", "Databricks SQL", "confirmed"),
    ("unity-catalog", "Unity Catalog", "confirmed"),
    ("scim", "Users and groups (SCIM)", "confirmed"),
    ("access-management", "Access management (permissions)", "confirmed"),
    ("dashboards", "Dashboards", "confirmed"),
    ("alerts", "SQL alerts", "confirmed"),
    ("apps", "Databricks Apps", "confirmed"),
    ("jobs", "Jobs", "reported"),
    ("clusters", "Clusters", "reported"),
    ("pipelines", "Pipelines", "reported"),
    ("query-history", "Query history", "reported"),
    ("mlflow", "MLflow experiments and models", "unconfirmed"),
    ("workspace", "Workspace (notebooks, folders, repos)", "unconfirmed"),
    ("secrets", "Secrets", "unconfirmed"),
    ("files", "Files (DBFS and volumes)", "unconfirmed"),
    ("model-serving", "Model serving", "unconfirmed"),
    ("vector-search", "Vector search", "unconfirmed"),
)

# --- audit log (system.access.audit.service_name) -> scope ------------------------------------------------
# Service names are the ones in Databricks' audit log reference; the ones marked "guess" are not documented
# service names or the scope they fall under is not documented. Lookups ignore case.
_SERVICE_TO_SCOPE: tuple[tuple[str, str], ...] = (
    ("databrickssql", "sql"),
    ("sqlanalytics", "sql"),  # the pre-2021 name of databrickssql
    ("sqlPermissions", "sql"),  # legacy table access control
    ("queryHistory", "query-history"),  # guess
    ("jobs", "jobs"),
    ("clusters", "clusters"),
    ("clusterPolicies", "clusters"),  # guess: scope of cluster policies
    ("clusterLibraries", "clusters"),  # guess
    ("instancePools", "clusters"),  # guess
    ("deltaPipelines", "pipelines"),
    ("unityCatalog", "unity-catalog"),
    ("accounts", "scim"),  # user and group changes; see _ACTION_TO_SCOPE for authentication events
    ("groups", "scim"),
    ("iamRole", "access-management"),  # guess
    ("secrets", "secrets"),
    ("workspace", "workspace"),
    ("notebook", "workspace"),
    ("repos", "workspace"),
    ("gitCredentials", "workspace"),  # guess
    ("mlflowExperiment", "mlflow"),
    ("mlflowAcledArtifact", "mlflow"),
    ("mlflowModelRegistry", "mlflow"),  # guess
    ("modelRegistry", "mlflow"),
    ("serverlessRealTimeInference", "model-serving"),
    ("modelServing", "model-serving"),  # guess
    ("vectorSearch", "vector-search"),
    ("dbfs", "files"),
    ("filesystem", "files"),
    ("dashboards", "dashboards"),
    ("lakeviewDashboards", "dashboards"),  # guess
    ("alerts", "alerts"),
    ("sqlAlerts", "alerts"),  # guess
    ("apps", "apps"),
)

# (service_name, action_name) pairs that do not follow their service's scope. None = the event says nothing
# about scopes (e.g. the login that every token use produces).
_ACTION_TO_SCOPE: tuple[tuple[str, str, str | None], ...] = (
    ("accounts", "tokenLogin", None),
    ("accounts", "generateDbToken", "authentication"),  # guess
)

# Calls no PAT scope covers (service_name, action_name or None for every action of the service). Once a
# token has scopes, by auto-scoping or by hand, Databricks denies them; only full access allows them, and
# auto-scoping marks a token that made one AUTOSCOPE_STATE_API_NOT_COVERED (SDK `iam.AutoscopeState`).
# Databricks publishes no such list: every entry is a guess from its scope documentation, which names no
# scope for these APIs. A call listed here is "not covered"; a service in no table is "unknown".
_NOT_COVERED: tuple[tuple[str, str | None], ...] = (
    ("webTerminal", None),  # guess: the web terminal of a cluster
    ("globalInitScripts", None),  # guess: workspace admin API
    ("workspace", "workspaceConfEdit"),  # guess: workspace admin settings (workspace-conf)
)


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    label: str
    status: ScopeStatus


SCOPES: tuple[Scope, ...] = tuple(Scope(name, label, status) for name, label, status in _CATALOGUE)
SCOPES_BY_NAME: Mapping[str, Scope] = MappingProxyType({scope.name: scope for scope in SCOPES})
ALL_SCOPE_NAMES: frozenset[str] = frozenset(SCOPES_BY_NAME)

# Full access, or the power to mint tokens of any scope: choosing one by hand needs an admin's approval.
PRIVILEGED_SCOPES: frozenset[str] = frozenset({"authentication", "all-apis"})

SERVICE_SCOPE_MAP: Mapping[str, str] = MappingProxyType(dict(_SERVICE_TO_SCOPE))
_SERVICE_LOOKUP: dict[str, str] = {service.lower(): scope for service, scope in _SERVICE_TO_SCOPE}
_ACTION_LOOKUP: dict[tuple[str, str], str | None] = {
    (service.lower(), action.lower()): scope for service, action, scope in _ACTION_TO_SCOPE
}


_NOT_COVERED_LOOKUP: frozenset[tuple[str, str | None]] = frozenset(
    (service.lower(), action.lower() if action else None) for service, action in _NOT_COVERED
)


def is_known(name: str) -> bool:
    """True when `name` is a scope of the catalogue."""
    return name in ALL_SCOPE_NAMES


def label_for(name: str) -> str:
    """The human label of a scope; an unknown scope is shown by its name."""
    scope = SCOPES_BY_NAME.get(name)
    return scope.label if scope is not None else name


def scope_for_service(service_name: str, action_name: str | None = None) -> str | None:
    """The scope an audit-log event needs, or None when the service is unmapped.

    Callers keep unmapped services and show them as such. Pass `action_name` to honour the few
    actions that do not follow their service (the `accounts` `tokenLogin` event maps to None).
    """
    service = service_name.strip().lower()
    if action_name is not None:
        key = (service, action_name.strip().lower())
        if key in _ACTION_LOOKUP:
            return _ACTION_LOOKUP[key]
    return _SERVICE_LOOKUP.get(service)


def not_covered(service_name: str, action_name: str | None) -> bool:
    """True when no scope allows this call (see `_NOT_COVERED`): manual scopes cannot allow it."""
    service = service_name.strip().lower()
    action = action_name.strip().lower() if action_name else None
    if (service, None) in _NOT_COVERED_LOOKUP:
        return True
    return action is not None and (service, action) in _NOT_COVERED_LOOKUP
