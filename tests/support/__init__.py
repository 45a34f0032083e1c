"""Test machinery shared by suites: a PostgreSQL server of the test's own, a TCP proxy."""
