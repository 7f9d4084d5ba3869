"""The process-fov image: one array child runs its FOV (or its slice of FOVs) through the recipe."""
