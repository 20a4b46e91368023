package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/pkg/demo"
)

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--help"}, &out); err != nil {
		t.Fatalf("run --help: %v", err)
	}
	for _, name := range []string{
		"TRIGGER_INBOX_URL", "TRIGGER_API_KEYS", "TRIGGER_CONCURRENCY", "TRIGGER_BATCH_SIZE", "TRIGGER_WAIT_SECONDS",
		"TRIGGER_VISIBILITY_TIMEOUT", "TRIGGER_NACK_DELAY", "TRIGGER_ACK_INTERVAL", "TRIGGER_POLL_INTERVAL",
		"TRIGGER_SHUTDOWN_TIMEOUT", "TRIGGER_REQUEST_TIMEOUT", "TRIGGER_LOG_LEVEL",
	} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("--help does not mention %s:\n%s", name, out.String())
		}
	}
}

func TestMalformedKeyStopsStartUpWithoutShowingIt(t *testing.T) {
	const key = "tenant_acme_live_not-a-real-key"
	t.Setenv("TRIGGER_INBOX_URL", "http://127.0.0.1:1")
	t.Setenv("TRIGGER_API_KEYS", key)
	t.Setenv("TRIGGER_LOG_LEVEL", "error")
	err := run(nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "key 1 of 1") {
		t.Fatalf("run: %v, want a malformed-key error", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error shows the key: %v", err)
	}
}

func TestReadmeListsDemoSettings(t *testing.T) {
	configtest.CheckDocs(t, "worker demo", &demo.Config{})
}

// TestDemoRefusesAnEmptyTokenList: the token list is read from a Secret, so a value of only
// separators must stop the demo before any call, not send an empty bearer token.
func TestDemoRefusesAnEmptyTokenList(t *testing.T) {
	t.Setenv("TRIGGER_ADMIN_URL", "http://127.0.0.1:1")
	t.Setenv("TRIGGER_INGEST_URL", "http://127.0.0.1:1")
	t.Setenv("TRIGGER_INBOX_URL", "http://127.0.0.1:1")
	t.Setenv("TRIGGER_ADMIN_TOKENS", " ,\n")
	t.Setenv("TRIGGER_LOG_LEVEL", "error")
	err := run([]string{"demo"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "TRIGGER_ADMIN_TOKENS holds no token") {
		t.Fatalf("run demo: %v, want the empty token list refused", err)
	}
}
