package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/startup"
)

// These tests set process environment variables, so none of them runs in parallel.

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// unsetenv removes name for the rest of the test and restores it afterwards.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// dynamoEnv points the binary at the shared DynamoDB Local.
func dynamoEnv(t *testing.T, prefix string) {
	t.Helper()
	for _, kv := range shared.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	t.Setenv("TRIGGER_TABLE_PREFIX", prefix)
}

func TestRunRefusesToStart(t *testing.T) {
	cases := []struct {
		name   string
		tokens *string // nil: unset
		want   string
	}{
		{"tokens-unset", nil, "no admin token configured"},
		{"tokens-empty", ptr(""), "no admin token"},
		{"token-unnamed", ptr(strings.Repeat("k", 40)), "has no id"},
		{"token-short", ptr("ops:short-token"), "shorter than 32"},
		{"one-token-short", ptr("ops:" + strings.Repeat("k", 40) + ",ci:short-token"), "shorter than 32"},
		{"file-and-env", ptr("ops:" + strings.Repeat("k", 40)), "not both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dynamoEnv(t, "never_")
			// A port no one can listen on: reaching the server would fail differently.
			t.Setenv("TRIGGER_HTTP_ADDR", "256.0.0.1:1")
			if tc.tokens == nil {
				unsetenv(t, "TRIGGER_ADMIN_TOKENS")
			} else {
				t.Setenv("TRIGGER_ADMIN_TOKENS", *tc.tokens)
			}
			unsetenv(t, "TRIGGER_ADMIN_TOKENS_FILE")
			if tc.name == "file-and-env" {
				t.Setenv("TRIGGER_ADMIN_TOKENS_FILE", "/nonexistent/admin-tokens")
			}
			err := run(context.Background(), nil, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal mentioning %q", err, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestRunHelp(t *testing.T) {
	unsetenv(t, "TRIGGER_ADMIN_TOKENS")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TRIGGER_ADMIN_TOKENS", "TRIGGER_ADMIN_TOKENS_FILE", "TRIGGER_HTTP_ADDR", "TRIGGER_DYNAMODB_ENDPOINT", "ensure-tables"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := run(context.Background(), []string{"ensure-tables", "--help"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "TRIGGER_DYNAMODB_ENDPOINT") || strings.Contains(out.String(), "ADMIN_TOKENS") {
		t.Fatalf("ensure-tables --help must list the DynamoDB settings and no admin token:\n%s", out.String())
	}
}

func TestRunRejectsBadInvocations(t *testing.T) {
	t.Setenv("TRIGGER_ADMIN_TOKENS", "ops:"+strings.Repeat("k", 40))
	if err := run(context.Background(), []string{"serve-everything"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: got %v", err)
	}
	t.Setenv("TRIGGER_LOG_LEVEL", "chatty")
	if err := run(context.Background(), nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "level") {
		t.Fatalf("bad log level: got %v", err)
	}
}

func TestEnsureTablesCommand(t *testing.T) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "cmd" + hex.EncodeToString(b[:]) + "_"
	tables := ddb.TableNames(prefix)
	t.Cleanup(func() {
		for _, name := range tables.All() {
			_, _ = shared.Client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name})
		}
	})
	dynamoEnv(t, prefix)
	// The job that creates tables holds no admin token.
	unsetenv(t, "TRIGGER_ADMIN_TOKENS")

	for i := range 2 {
		if err := run(context.Background(), []string{"ensure-tables"}, &bytes.Buffer{}); err != nil {
			t.Fatalf("ensure-tables run %d: %v", i+1, err)
		}
	}
	if err := ddb.Check(context.Background(), shared.Client, tables.All()...); err != nil {
		t.Fatalf("tables missing after ensure-tables: %v", err)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	return startup.Exec(ctx, program, args, stdout)
}
