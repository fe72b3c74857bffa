//! Prometheus metrics of a node and its gateway.
