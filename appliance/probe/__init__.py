"""Self-probing: pool members from DNS, fresh probe addresses, one packet each to one server."""
