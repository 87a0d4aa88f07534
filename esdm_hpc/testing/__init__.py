"""What the tests, the benchmarks and the demos share: real servers to test
against (`seaweedfs`: an S3 server on loopback)."""
