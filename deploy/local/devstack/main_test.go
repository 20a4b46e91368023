package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
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
