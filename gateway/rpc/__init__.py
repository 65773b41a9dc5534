"""The gRPC edge: status mapping, the server interceptor, and thin servicers."""
