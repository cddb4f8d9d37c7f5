"""An example bench plugin: an algorithm (Dual-clip PPO) and a task (LineWalk-v0)."""
