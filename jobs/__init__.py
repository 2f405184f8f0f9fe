"""Entry points for `ray job submit` and the `graphrec` command (Ray and MLflow live here)."""
