package main

import (
	"slices"
	"testing"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
)

func TestAbuserArgsRouteAToEachService(t *testing.T) {
	urls := map[string]string{stack.Ingest: "http://127.0.0.1:1", stack.Inbox: "http://127.0.0.1:2", stack.KeysAdmin: "http://127.0.0.1:3"}
	args := abuserArgs("/bench", urls)
	i := slices.Index(args, abuserMode)
	if i < 0 || args[i-1] != "/bench" {
		t.Fatalf("args %q: want the binary then %s", args, abuserMode)
	}
	up, err := abuserUpstreams(args[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	if up.Ingest.Host != "127.0.0.1:1" || up.Inbox.Host != "127.0.0.1:2" || up.KeysAdmin.Host != "127.0.0.1:3" {
		t.Fatalf("upstreams %v %v %v: not the services given", up.Ingest, up.Inbox, up.KeysAdmin)
	}
	for _, bad := range [][]string{nil, {"http://a", "http://b"}, {"http://a", "b", "http://c"}} {
		if _, err := abuserUpstreams(bad); err == nil {
			t.Fatalf("%q: accepted", bad)
		}
	}
}
