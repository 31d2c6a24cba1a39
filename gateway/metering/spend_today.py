"""What each team spent today (UTC) in this process, budget or not: the console's spend table.

Budgets keep their own, authoritative tally (gateway/metering/budgets.py: loaded from the ledger and
shared by replicas); this one only adds the teams without a budget. A new UTC day starts from nothing.
"""

from __future__ import annotations

from decimal import Decimal

DAY_S = 86_400


class SpendToday:
    def __init__(self) -> None:
        self.day = -1
        self.teams: dict[str, Decimal] = {}

    def add(self, team: str, cost: Decimal, wall: float) -> None:
        """`cost` charged to `team` at `wall` (Unix seconds)."""
        day = int(wall // DAY_S)
        if day != self.day:
            self.day, self.teams = day, {}
        self.teams[team] = self.teams.get(team, Decimal(0)) + cost

    def by_team(self, wall: float) -> dict[str, Decimal]:
        """Each team's spend on the UTC day of `wall`."""
        return dict(self.teams) if int(wall // DAY_S) == self.day else {}
