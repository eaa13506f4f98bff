"""Cases: the definition table (states, events, roles, routes), its guards, the case record and the
one transition function that decides and replays."""
