"""The scheduled jobs of `tokenbot serve`: when they run (`scheduler`), which replica runs each run
(`lease`), and what a run does (`runners`)."""
