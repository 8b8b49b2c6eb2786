"""A fifth provider, Acme, built outside the package from the documented skeleton.

``acme/`` is the provider's folder, ``acme.yaml`` its spec and ``suite.py`` its contract
suite; the registry line is ``PROVIDERS`` in ``tests/test_fifth_provider.py``. Nothing else
in bulksim knows of it.
"""
