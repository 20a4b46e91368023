package stack

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/demo"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

// fakeWorker writes a shell script that stands in for the worker binary.
func fakeWorker(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "worker")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunWorkerStopsTheWorkerOnceEveryEventIsSettled(t *testing.T) {
	inbox := fakeInbox(t, map[string]string{"evt_a": "delivered", "evt_b": "delivered"}, nil)
	tenants := []demo.Tenant{{Name: "A", Key: "key-a", Quiet: demo.Clients{Ingest: inbox, Inbox: inbox}, Event: "evt_a"}, {Name: "B", Key: "key-b", Quiet: demo.Clients{Ingest: inbox, Inbox: inbox}, Event: "evt_b"}}
	bin := fakeWorker(t, `trap 'echo "stopping on TERM"; exit 0' TERM
echo "keys $TRIGGER_API_KEYS via $TRIGGER_INBOX_URL"
printf '%s\n' '{"msg":"processing event","event_id":"evt_b"}' '{"msg":"processing event","event_id":"evt_a"}'
while :; do sleep 0.05; done
`)
	var out strings.Builder
	stream := proc.NewStream(&out)
	env := Env{GatewayURL: "http://gateway.invalid", WorkerBin: bin}
	processed, err := runWorker(context.Background(), stream, stream.Prefixed(""), env, tenants)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !slices.Equal(processed, []string{"evt_b", "evt_a"}) {
		t.Errorf("processed %v, want [evt_b evt_a]", processed)
	}
	for _, want := range []string{
		"  worker | keys key-a,key-b via http://gateway.invalid\n",
		"   every event processed and delivered, both inboxes empty; stopping the worker (SIGTERM)\n",
		"  worker | stopping on TERM\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunWorkerFailsWhenTheWorkerEndsEarly(t *testing.T) {
	inbox := fakeInbox(t, map[string]string{}, nil)
	tenants := []demo.Tenant{{Name: "A", Key: "key-a", Quiet: demo.Clients{Ingest: inbox, Inbox: inbox}, Event: "evt_a"}}
	var out strings.Builder
	stream := proc.NewStream(&out)
	env := Env{GatewayURL: "http://gateway.invalid", WorkerBin: fakeWorker(t, "echo 'no keys'; exit 3\n")}
	_, err := runWorker(context.Background(), stream, stream.Prefixed(""), env, tenants)
	if err == nil || !strings.Contains(err.Error(), "worker exited before acknowledging every event (exit status 3)") ||
		!strings.Contains(err.Error(), "no processing line for evt_a") {
		t.Errorf("error %v, want the early exit and what was missing", err)
	}
	if !strings.Contains(out.String(), "  worker | no keys\n") {
		t.Errorf("output lacks the worker's line:\n%s", out.String())
	}
}
