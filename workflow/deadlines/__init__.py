"""Deadlines: policies as data, the Dutch statutory calendars, and the counting rule."""
