package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestKeyAnswersShowLastUse: a key never used has no last_used_at; once it authenticates, the
// admin API shows the use, written once for two authentications within the hour.
func TestKeyAnswersShowLastUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.mustCreateTenant(t, "acme")
	k := e.mustIssue(t, "acme", `{"label":"ci"}`)
	listed := func() map[string]any {
		t.Helper()
		res := e.do(t, request{method: "GET", path: "/admin/tenants/acme/keys"})
		if res.status != http.StatusOK {
			t.Fatalf("list keys: %d %s", res.status, res.body)
		}
		var list struct{ Keys []map[string]any }
		if err := json.Unmarshal(res.body, &list); err != nil || len(list.Keys) != 1 {
			t.Fatalf("list keys %s: %v", res.body, err)
		}
		return list.Keys[0]
	}
	if v, ok := listed()["last_used_at"]; ok {
		t.Fatalf("a key never used shows last_used_at %v", v)
	}
	auth := e.authenticator()
	used := e.clock.Now()
	for range 2 {
		if _, err := auth.Authenticate(context.Background(), k.APIKey); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
	}
	auth.WaitWrites()
	if got, want := listed()["last_used_at"], used.UTC().Format(time.RFC3339); got != want {
		t.Fatalf("last_used_at %v, want %s", got, want)
	}
}
