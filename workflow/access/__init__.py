"""Who may see and do what: role scopes, API tokens and the NEN 7513 access log."""
