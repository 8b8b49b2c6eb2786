"""The four providers' contract suites, one module each (``contracts.suites.<provider>``).

What a suite provides is :class:`contracts.registry.Suite`; the harness finds a provider's
suite through its record (``Provider.suite_module``, read by ``contracts.registry.suite_of``).
"""
