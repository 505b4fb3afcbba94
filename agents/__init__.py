"""The Fast Weight Memory core (:mod:`agents.fwm`, shared by every benchmark) and the RL agents:
recurrent policies and cores, recurrent A2C and PPO, envs, evaluation, shipped agents. Kept
light: ``from agents.fwm import ...`` must not import stable-baselines3 (a test asserts it)."""
