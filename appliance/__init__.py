"""HarvestWatch: catch the servers that harvest IPv6 addresses, and the scanners they feed."""
__version__ = "0.1.0"
