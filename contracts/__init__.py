"""bulksim's contracts: the provider specs and the harness that checks clients and providers."""
