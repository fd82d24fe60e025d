"""One router per resource; :func:`mechscope.server.app.create_app` mounts them under /api."""
