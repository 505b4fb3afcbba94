"""Learning machinery. Kept light: ``from agents.fwm import ...`` must not import
stable-baselines3 (a test asserts it)."""
