"""Platform infrastructure every service builds on. Depends on no service."""
