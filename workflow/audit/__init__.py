"""The audit trail: sealed, hash-chained records of every command, and the replay that rebuilds a
case from them."""
