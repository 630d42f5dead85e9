"""Pipeline definitions: each module's ``build(cfg, compute)`` returns a backend-neutral spec."""
