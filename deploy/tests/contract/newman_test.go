package contract_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// postmanDir holds the collection, its environment and the pinned newman.
var postmanDir = filepath.Join("..", "..", "postman")

// TestPostmanCollection runs the Postman collection of the seed's demo with the pinned newman
// against the real stack, through the checking proxy, so the collection's own checks and the
// document both judge every call. Node and npm are prerequisites of `make test`: without them
// this test fails, it never skips.
func TestPostmanCollection(t *testing.T) {
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the Postman collection with newman (install Node.js 18+ with npm): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	installNewman(ctx, t)

	st := sharedStack(t)
	proxy := checkingProxy(t, loadDocument(t), st.GatewayURL)
	run, out := runNewman(ctx, t, proxy, st.AdminToken)
	for _, f := range run.Run.Failures {
		t.Errorf("%s: %s %s: %s", f.Source.Name, f.Error.Name, f.Error.Test, f.Error.Message)
	}
	for kind, s := range run.Run.Stats {
		if s.Failed > 0 {
			t.Errorf("newman: %d of %d %s failed", s.Failed, s.Total, kind)
		}
	}
	everythingRan(t, run)
	if t.Failed() {
		t.Logf("newman's output:\n%s", out)
		return
	}
	t.Logf("newman: %d requests, %d checks, all passed", run.Run.Stats["requests"].Total, run.Run.Stats["assertions"].Total)
}

// installNewman installs exactly the lockfile's newman into deploy/postman/node_modules.
func installNewman(ctx context.Context, t *testing.T) {
	t.Helper()
	npmCI := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	npmCI.Dir = postmanDir
	if out, err := npmCI.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", postmanDir, err, out)
	}
}

// newmanReport is what the checks read of newman's JSON report.
type newmanReport struct {
	Run struct {
		Stats map[string]struct {
			Total  int `json:"total"`
			Failed int `json:"failed"`
		} `json:"stats"`
		Failures []struct {
			Error struct {
				Name    string `json:"name"`
				Message string `json:"message"`
				Test    string `json:"test"`
			} `json:"error"`
			Source struct {
				Name string `json:"name"`
			} `json:"source"`
		} `json:"failures"`
	} `json:"run"`
}

// runNewman runs the collection against baseURL and returns newman's report and its output.
func runNewman(ctx context.Context, t *testing.T, baseURL, adminToken string) (newmanReport, []byte) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "newman.json")
	newman := exec.CommandContext(ctx, "npx", "--no", "--", "newman", "run", "collection.json",
		"-e", "environment.json",
		"--env-var", "baseUrl="+baseURL,
		"--env-var", "adminToken="+adminToken,
		"--reporters", "cli,json",
		"--reporter-json-export", report,
		"--timeout-request", "60000",
		"--color", "off",
		"--disable-unicode",
	)
	newman.Dir = postmanDir
	out, err := newman.CombinedOutput()
	if err != nil {
		t.Fatalf("newman: %v\n%s", err, out)
	}
	var run newmanReport
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("newman wrote no report: %v\n%s", err, out)
	}
	if err := json.Unmarshal(data, &run); err != nil {
		t.Fatalf("newman's report: %v", err)
	}
	return run, out
}

// everythingRan checks every request ran and every check in the collection ran at least once:
// a script that stops early, or a request that newman skips, does not pass by saying nothing.
func everythingRan(t *testing.T, run newmanReport) {
	t.Helper()
	collection, err := os.ReadFile(filepath.Join(postmanDir, "collection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Item []struct {
			Item []json.RawMessage `json:"item"`
		} `json:"item"`
	}
	if err := json.Unmarshal(collection, &c); err != nil {
		t.Fatal(err)
	}
	requests := 0
	for _, f := range c.Item {
		requests += len(f.Item)
	}
	// The collection-wide checks run once per request and are written once.
	checks := strings.Count(string(collection), "pm.test(")
	if got := run.Run.Stats["requests"].Total; got < requests {
		t.Errorf("newman sent %d requests, the collection has %d", got, requests)
	}
	if got := run.Run.Stats["assertions"].Total; got < checks {
		t.Errorf("newman ran %d checks, the collection has %d", got, checks)
	}
}
