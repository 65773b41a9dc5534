"""Mutual recognition domain (requests, assessment, approval policy, revocation).

Built by the recognition issue; this package has no gRPC in it by design.
"""
