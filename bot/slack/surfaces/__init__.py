"""What reads the database and redraws a Slack surface: a reminder after a decision
(`refresh`), the App Home (`home.publish`) and what `/tokens` and the Home show of a person's
tokens (`overview`). The builders they call are pure (`bot.slack.blocks`)."""
