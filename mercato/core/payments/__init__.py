"""Payments: fee policies, payment gateways, and the money flows of milestones."""
