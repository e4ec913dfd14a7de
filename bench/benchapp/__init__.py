"""The measured model, its untracked twin, and their owners."""
