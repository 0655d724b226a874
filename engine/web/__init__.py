"""Files served to browsers: the snippet and the demo shop."""
