"""A stand-in for WHMCS, for the demo and the tests: WHMCS itself is proprietary."""
