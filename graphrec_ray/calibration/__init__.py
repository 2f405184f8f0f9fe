"""Probability calibration (Platt, isotonic) and calibration metrics."""
