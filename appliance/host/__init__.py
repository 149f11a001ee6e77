"""The appliance host itself: its firewall and its IPv6 privacy-address settings."""
