"""Local Databricks and Slack API servers that the real SDK clients talk to (tests and the demo)."""
