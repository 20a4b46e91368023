//go:build race

package e2e

// childBuildFlags builds the stack's binaries with the race detector when the test itself runs
// with it, so `make test` also checks the services and the worker under real traffic. A race
// in a child makes it exit 66, which fails the test at Stop.
var childBuildFlags = []string{"-race"}
