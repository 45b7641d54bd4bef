"""The browser UI: viewer pages, player, editor page; static files served by the platform."""
