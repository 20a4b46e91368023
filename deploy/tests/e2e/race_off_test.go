//go:build !race

package e2e

// childBuildFlags: see race_on_test.go.
var childBuildFlags []string
