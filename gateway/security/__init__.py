"""Security: identities from certificates, authorization, signatures and the dev PKI."""
