"""The activation server: a typed JSON API over the engine plus the built web app, one origin."""
