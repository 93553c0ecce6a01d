"""A local Databricks workspace that the real databricks-sdk talks to over HTTP: `DatabricksSandbox`
(sandbox.py) routes each request to the API that answers it (tokens.py, scim.py, secrets_conf.py,
statements.py over the SQL of sql/, oauth.py), all working on one `DatabricksWorkspace`
(state.py); errors.py holds Databricks' error answers and the bodies of injected faults."""

from bot.sandbox.databricks.sandbox import DatabricksSandbox
from bot.sandbox.databricks.state import ADMIN_USER_ID

__all__ = ["ADMIN_USER_ID", "DatabricksSandbox"]
