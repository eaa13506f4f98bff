"""Scheduled deadline work (arrives with the deadlines issue)."""
