"""Code shared by training and serving, so both compute the same thing."""
