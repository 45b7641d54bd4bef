"""Play authorization, signed media URLs, heartbeats, resume and history."""
