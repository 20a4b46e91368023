// Package k8stest checks the Kubernetes and AWS delivery files against the code without a cluster,
// a Docker engine or a helm binary: the chart is linted and rendered with the Helm SDK and decoded
// strictly with client-go's scheme, the Tiltfile is executed with recording stubs, and the
// CloudFormation template is compared with pkg/ddb's table definitions and grants.
//
// The chart's README is generated from values.yaml: `go generate` here, or from the root
// `go run ./deploy/tests/chart/cmd/chartdoc`; TestChartReadmeIsCurrent fails until it is current.
package k8stest

//go:generate go run ./cmd/chartdoc -chart ../../../charts/trigger-api
