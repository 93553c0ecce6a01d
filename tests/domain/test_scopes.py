"""Specification of the scope catalogue and the audit-log service -> scope map."""

from __future__ import annotations

import pytest

from bot.domain import scopes
from bot.domain.scopes import (
    ALL_SCOPE_NAMES,
    PRIVILEGED_SCOPES,
    SCOPES,
    SERVICE_SCOPE_MAP,
    is_known,
    label_for,
    scope_for_service,
)

CONFIRMED = {"all-apis", "authentication", "sql", "unity-catalog", "scim", "access-management", "dashboards"}
CONFIRMED |= {"alerts", "apps"}
REPORTED = {"jobs", "clusters", "pipelines", "query-history"}
UNCONFIRMED = {"mlflow", "workspace", "secrets", "files", "model-serving", "vector-search"}


def test_catalogue_holds_the_scope_names_with_their_status():
    by_status: dict[str, set[str]] = {}
    for scope in SCOPES:
        by_status.setdefault(scope.status, set()).add(scope.name)

    assert by_status == {"confirmed": CONFIRMED, "reported": REPORTED, "unconfirmed": UNCONFIRMED}


def test_scope_names_are_unique_and_labelled():
    names = [scope.name for scope in SCOPES]

    assert len(names) == len(set(names))
    assert set(names) == ALL_SCOPE_NAMES
    assert all(scope.label and scope.label != scope.name for scope in SCOPES)


def test_privileged_scopes_need_an_admin():
    assert PRIVILEGED_SCOPES == {"authentication", "all-apis"}
    assert PRIVILEGED_SCOPES <= ALL_SCOPE_NAMES


def test_is_known():
    assert is_known("sql")
    assert is_known("vector-search")
    assert not is_known("SQL")
    assert not is_known("made-up")


def test_label_for_shows_an_unknown_scope_by_its_name():
    assert label_for("unity-catalog") == "Unity Catalog"
    assert label_for("made-up") == "made-up"


def test_every_mapped_service_leads_to_a_known_scope():
    assert set(SERVICE_SCOPE_MAP.values()) <= ALL_SCOPE_NAMES


@pytest.mark.parametrize(
    ("service", "scope"),
    [
        ("databrickssql", "sql"),
        ("sqlPermissions", "sql"),
        ("queryHistory", "query-history"),
        ("jobs", "jobs"),
        ("clusters", "clusters"),
        ("deltaPipelines", "pipelines"),
        ("unityCatalog", "unity-catalog"),
        ("accounts", "scim"),
        ("iamRole", "access-management"),
        ("secrets", "secrets"),
        ("workspace", "workspace"),
        ("notebook", "workspace"),
        ("repos", "workspace"),
        ("mlflowExperiment", "mlflow"),
        ("modelRegistry", "mlflow"),
        ("serverlessRealTimeInference", "model-serving"),
        ("vectorSearch", "vector-search"),
        ("dbfs", "files"),
        ("filesystem", "files"),
        ("dashboards", "dashboards"),
        ("lakeviewDashboards", "dashboards"),
        ("alerts", "alerts"),
        ("apps", "apps"),
    ],
)
def test_audit_service_maps_to_its_scope(service, scope):
    assert scope_for_service(service) == scope


def test_service_lookup_ignores_case_and_spaces():
    assert scope_for_service("UnityCatalog") == "unity-catalog"
    assert scope_for_service(" Apps ") == "apps"


def test_unmapped_service_gives_none():
    assert scope_for_service("webTerminal") is None
    assert scope_for_service("") is None


def test_token_login_says_nothing_about_scopes():
    assert scope_for_service("accounts", "tokenLogin") is None
    assert scope_for_service("accounts", "addPrincipalToGroup") == "scim"


def test_catalogue_is_immutable():
    with pytest.raises(TypeError):
        scopes.SERVICE_SCOPE_MAP["jobs"] = "sql"  # type: ignore[index]
