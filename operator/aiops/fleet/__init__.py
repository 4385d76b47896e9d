"""The fleet seen as one: Incidents on different clusters that share a cause."""
