"""Answer quality: tiers of targets, canary suites per deployment, and quality brownouts."""
