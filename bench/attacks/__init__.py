"""Scripts that repeat issue 14's attacks against a running system (README.md here)."""
