"""Partners (e-commerce platforms, carriers): credentials and scopes, their feed without personal
data, and the service notices they get (maintenance windows, incidents)."""
