"""Databricks access: `records` (plain data and the gateway interface) and `gateway` (the SDK)."""
