"""Test helpers shared by every app's tests (fixtures imported by the root conftest)."""
