//go:build !race

package main

// childBuildFlags: see race_on_test.go.
var childBuildFlags []string
