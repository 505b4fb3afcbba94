"""The RL agents: recurrent actor-critic policies over any memory core of :mod:`memory`,
recurrent A2C and PPO, envs, evaluation, shipped agents."""
