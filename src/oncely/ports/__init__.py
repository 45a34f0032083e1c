"""Interfaces between the runtime and its adapters. Internal: free to change between releases."""
