package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
)

func TestCommandLine(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"no-command", nil, "no command", "usage:"},
		{"unknown-command", []string{"deploy"}, `unknown command "deploy"`, "usage:"},
		{"help", []string{"help"}, "", "usage:"},
		{"demo-without-stack", []string{"demo", "-env", filepath.Join(t.TempDir(), "env")}, "make run", ""},
		{"run-refuses-public-gateway", []string{"run", "-addr", "0.0.0.0:8080"}, "loopback", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(stdout.String()+stderr.String(), tc.wantOut) {
				t.Errorf("output %q lacks %q", stdout.String()+stderr.String(), tc.wantOut)
			}
		})
	}
}

func TestRunUsesTheDynamoDBTheSDKEnvironmentNames(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, key, prefix string
		chain                       bool
	}{
		{"none", "", "", "", false},
		{"local-dynamodb", "http://127.0.0.1:8000", "", "dev_", false},
		{"localhost-proxy", "http://localhost:9000", "", "", false},
		{"local-proxy-with-own-credentials", "http://127.0.0.1:9000", "AKIAEXAMPLE", "", true},
		{"aws", "https://dynamodb.eu-west-1.amazonaws.com", "", "trigger_", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", tc.endpoint)
			t.Setenv("AWS_ACCESS_KEY_ID", tc.key)
			t.Setenv("AWS_PROFILE", "")
			t.Setenv("TRIGGER_TABLE_PREFIX", tc.prefix)
			var opts stack.Options
			dynamoDBFromEnv(&opts)
			if opts.DynamoDBEndpoint != tc.endpoint || opts.AWSChain != tc.chain || opts.TablePrefix != tc.prefix {
				t.Fatalf("endpoint %q, chain %v, prefix %q; want %q, %v, %q", opts.DynamoDBEndpoint, opts.AWSChain, opts.TablePrefix, tc.endpoint, tc.chain, tc.prefix)
			}
		})
	}
}

func TestObservabilityFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name, tracing, observability string
		jaeger, prometheus           bool
		wantErr                      string
	}{
		{"none", "", "", false, false, ""},
		{"tracing", "jaeger", "", true, false, ""},
		{"observability", "", "1", true, true, ""},
		{"both", "jaeger", "1", true, true, ""},
		{"observability-off", "", "0", false, false, ""},
		{"observability-typo", "", "yes", false, false, "OBSERVABILITY"},
		{"tracing-typo", "zipkin", "", false, false, "TRACING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TRACING", tc.tracing)
			t.Setenv("OBSERVABILITY", tc.observability)
			var opts stack.Options
			err := observabilityFromEnv(&opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || opts.Tracing != tc.jaeger || opts.Prometheus != tc.prometheus {
				t.Fatalf("tracing %v, prometheus %v, err %v; want %v, %v", opts.Tracing, opts.Prometheus, err, tc.jaeger, tc.prometheus)
			}
			if tc.prometheus && opts.PrometheusAddr != stack.DefaultPrometheusAddr {
				t.Errorf("Prometheus on %q, want %s", opts.PrometheusAddr, stack.DefaultPrometheusAddr)
			}
		})
	}
}
