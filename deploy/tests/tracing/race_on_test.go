//go:build race

package tracing_test

// childBuildFlags builds the stack's binaries with the race detector when the test runs with it.
var childBuildFlags = []string{"-race"}
