"""Routing decisions: route tables, the planner, breakers and health, error classification, retry
budgets, first-token limits, local GPU pools (load, picking, scraping) and the request log.

Pure decisions with an injected clock, except the pool scraper; it imports providers (their error
type), policy and the ground floor."""
