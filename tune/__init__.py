"""Ray Tune sweeps (Pareto frontier of engagement vs value)."""
