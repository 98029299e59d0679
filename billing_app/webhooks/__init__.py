"""What each Paddle event means to us: one handler per event type."""
