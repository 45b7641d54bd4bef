"""Members, profiles, credentials, tokens and roles."""
