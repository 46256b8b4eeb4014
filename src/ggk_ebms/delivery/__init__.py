"""Delivery of received StUF-GGk traffic to domain applications, and submission from them."""
