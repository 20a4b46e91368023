//go:build !race

package tracing_test

var childBuildFlags []string
