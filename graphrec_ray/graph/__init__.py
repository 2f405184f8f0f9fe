"""User-item bipartite graph and its normalised adjacency."""
