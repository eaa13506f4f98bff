"""Coverage: which insurer rules decide whether a second opinion is paid, rule by rule."""
