"""Everything that talks to Redis: key layout, connection, and the stored things."""
