"""Who uses a token, from the audit log's `user_agent` and `source_ip_address`: pure rules.

- `client_family(user_agent)`: the family of a client (Power BI, dbt, the Databricks CLI, ...) from
  a small table of patterns kept as data below; an agent no pattern knows is shown as it is (its
  control characters removed, cut to `AGENT_CHARS`), never dropped.
- `network_of(ip)`: the /24 of an IPv4 address, the /64 of an IPv6 one (an IPv4-mapped IPv6
  address counts as IPv4); anything else is `UNKNOWN_NETWORK`.
- `summarise(uses)`: a token's (client, network) rows as one line per client, most recent first.
- `recent_use(...)`: what a Revoke confirmation may say about the last days, or that it cannot.

Edit `_FAMILIES` when a client is worth naming: first match wins, so put an application
(Power BI, dbt, Airflow) before the library it is built on (an ODBC driver, the Python SDK).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

AGENT_CHARS = 60  # of an unknown user agent, as shown and stored as its client
UNKNOWN_CLIENT = "unknown client"  # no user_agent in the audit row
UNKNOWN_NETWORK = "unknown network"  # no or no valid source_ip_address
RECENT_DAYS = 7  # what a Revoke confirmation speaks of
# The audit log is behind when its newest event is older than this (system tables lag by
# hours, not days): then "no use seen" would be a guess, and tokenbot says it does not know.
AUDIT_DELAY_LIMIT = timedelta(hours=36)
READ_STALE_AFTER = timedelta(days=3)  # the last successful read of the audit log is too old

# (family, pattern on the user agent, case-insensitive). Sources: each client's own user-agent
# string as it sends it (the SDKs' `useragent` modules: "databricks-sdk-py/0.x", "cli/0.2xx
# databricks-sdk-go/..."; Simba/Databricks ODBC and JDBC drivers; Power BI's connector).
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("Power BI", r"power\s*bi|microsoft\.data\.mashup|pbi(desktop|service)"),
    ("Tableau", r"tableau"),
    ("Looker", r"looker"),
    ("dbt", r"\bdbt([-/ ]|$)"),
    ("Airflow", r"airflow"),
    ("Azure Data Factory", r"azuredatafactory|\badf\b"),
    ("Fivetran", r"fivetran"),
    ("Terraform", r"terraform|databricks-tf-provider"),
    ("Databricks CLI", r"(^|\s)cli/\d|databricks-cli"),
    ("Databricks SQL connector (Python)", r"pydatabrickssqlconnector|databricks-sql-python"),
    ("Databricks SDK (Python)", r"databricks-sdk-py"),
    ("Databricks SDK (Go)", r"databricks-sdk-go"),
    ("Databricks SDK (Java)", r"databricks-sdk-java"),
    ("JDBC driver", r"jdbc"),
    ("ODBC driver", r"odbc"),
    ("python-requests", r"python-requests"),
    ("curl", r"^curl/"),
    ("Postman", r"postmanruntime"),
    ("Java HTTP client", r"apache-httpclient|okhttp|^java/"),
    ("Web browser", r"^mozilla/"),
)
_COMPILED = tuple((family, re.compile(pattern, re.IGNORECASE)) for family, pattern in _FAMILIES)
KNOWN_FAMILIES = frozenset(family for family, _ in _FAMILIES)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_agent(user_agent: str | None, limit: int) -> str:
    """A user agent without control characters or runs of blanks, cut to `limit` characters."""
    agent = " ".join(_CONTROL.sub(" ", user_agent or "").split())
    return agent if len(agent) <= limit else agent[: limit - 1] + "…"


def client_family(user_agent: str | None) -> str:
    """The client family of a user agent, or the agent itself (cleaned, cut) when unknown."""
    agent = clean_agent(user_agent, 10_000)
    if not agent:
        return UNKNOWN_CLIENT
    for family, pattern in _COMPILED:
        if pattern.search(agent):
            return family
    return clean_agent(agent, AGENT_CHARS)


def is_known(client: str) -> bool:
    return client in KNOWN_FAMILIES


def network_of(source_ip: str | None) -> str:
    """ "10.30.0.0/24" for 10.30.0.242; "2001:db8:1:2::/64" for an IPv6 address; else unknown.
    A list (a proxy's "client, proxy") counts by its first address."""
    text = (source_ip or "").split(",")[0].strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return UNKNOWN_NETWORK
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def within(network: str, allowed: Iterable[str]) -> bool:
    """Whether a /24 or /64 lies inside one of the allowed networks (CIDR text)."""
    try:
        ours = ipaddress.ip_network(network)
    except ValueError:
        return False
    for cidr in allowed:
        theirs = ipaddress.ip_network(cidr, strict=False)
        if ours.version == theirs.version and ours.subnet_of(theirs):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# a token's consumers


@dataclass(frozen=True, slots=True)
class Use:
    """Calls of one client family from one network, over the lookback window."""

    client: str
    network: str
    first_seen: datetime
    last_seen: datetime
    calls: int
    agent: str = ""  # one of the raw user agents behind `client` (cleaned, cut)


@dataclass(frozen=True, slots=True)
class Consumer:
    """One client family, the networks it came from, and when and how often."""

    client: str
    networks: tuple[str, ...]  # most calls first
    first_seen: datetime
    last_seen: datetime
    calls: int

    def as_dict(self) -> dict[str, object]:
        """The report's shape (DESIGN.md: `{client, networks, first_seen, last_seen, calls}`)."""
        return {
            "client": self.client,
            "networks": list(self.networks),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "calls": self.calls,
        }


def summarise(uses: Iterable[Use]) -> tuple[Consumer, ...]:
    """One `Consumer` per client family, the most recently seen first."""
    by_client: dict[str, list[Use]] = {}
    for use in uses:
        by_client.setdefault(use.client, []).append(use)
    consumers = []
    for client, group in by_client.items():
        networks = sorted(group, key=lambda u: (-u.calls, u.network))
        consumers.append(
            Consumer(
                client=client,
                networks=tuple(dict.fromkeys(u.network for u in networks)),
                first_seen=min(u.first_seen for u in group),
                last_seen=max(u.last_seen for u in group),
                calls=sum(u.calls for u in group),
            )
        )
    return tuple(sorted(consumers, key=lambda c: (-c.last_seen.timestamp(), -c.calls, c.client)))


class Coverage(StrEnum):
    """How far tokenbot can speak of a workspace's recent use from its audit log."""

    OK = "ok"
    NOT_READ = "not_read"  # no audit_warehouse_id, or no successful read yet
    STALE = "stale"  # the last successful read is older than READ_STALE_AFTER
    EMPTY = "empty"  # the audit log had no event at all in the lookback window
    DELAYED = "delayed"  # its newest event is older than AUDIT_DELAY_LIMIT


def coverage(read_at: datetime | None, through: datetime | None, now: datetime) -> Coverage:
    """`read_at`: the last successful read; `through`: the newest audit event it saw."""
    if read_at is None:
        return Coverage.NOT_READ
    if now - read_at > READ_STALE_AFTER:
        return Coverage.STALE
    if through is None:
        return Coverage.EMPTY
    if read_at - through > AUDIT_DELAY_LIMIT:
        return Coverage.DELAYED
    return Coverage.OK


@dataclass(frozen=True, slots=True)
class TokenConsumers:
    """What the audit log says about a token's consumers, and how much it can say."""

    consumers: tuple[Consumer, ...]
    coverage: Coverage
    read_at: datetime | None = None
    through: datetime | None = None  # the newest audit event of the workspace at the last read

    def recent(self, now: datetime, days: int = RECENT_DAYS) -> tuple[Consumer, ...]:
        """The consumers seen within the last `days` (as far as the audit log goes)."""
        since = now - timedelta(days=days)
        return tuple(c for c in self.consumers if c.last_seen >= since)

    def knows_no_recent_use(
        self, now: datetime, days: int = RECENT_DAYS, last_used_on: datetime | None = None
    ) -> bool:
        """True only when the audit log covers the whole window and shows no use in it, and
        Databricks' own last-use day (`last_used_on`, midnight UTC) does not say otherwise: a
        missing, stale, empty or delayed log never says "not used"."""
        if self.coverage is not Coverage.OK or self.recent(now, days):
            return False
        return not self.unexplained_use(now, days, last_used_on)

    def unexplained_use(self, now: datetime, days: int, last_used_on: datetime | None) -> bool:
        """Databricks reports a use within the window that the audit log ties to no session."""
        if last_used_on is None or self.recent(now, days):
            return False
        window_start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        return last_used_on >= window_start


NO_CONSUMERS = TokenConsumers(consumers=(), coverage=Coverage.NOT_READ)


def as_consumers(
    uses: Sequence[Use], read_at: datetime | None, through: datetime | None, now: datetime
) -> TokenConsumers:
    return TokenConsumers(summarise(uses), coverage(read_at, through, now), read_at, through)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
