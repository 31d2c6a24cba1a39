"""State that replicas share: one small interface (base.py), kept in memory or in Redis."""
