"""Reference data the figures depend on, kept as versioned data files with their loaders."""
