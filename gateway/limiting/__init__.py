"""Rate limits per team or key (`rate_limits:` in the policy), shared between replicas."""
