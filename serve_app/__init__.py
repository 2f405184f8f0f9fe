"""The Ray Serve application: a typed builder plus deployments wrapping graphrec_ray.serving."""
