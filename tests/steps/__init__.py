"""Step functions the tests' workflows run (workers import them by path)."""
