"""Everything that touches Slack: the only package that imports slack_bolt or slack_sdk."""
