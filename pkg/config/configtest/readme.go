// Package configtest checks the configuration reference against the binaries' settings.
package configtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config"
)

// DocsPath is the configuration reference, relative to the repository root.
const DocsPath = "docs/configuration.md"

// CheckDocs fails t unless DocsPath holds exactly config.Table(binary, spec). Tests of each
// binary call it, so a setting cannot be added, renamed or re-defaulted without the reference
// following.
func CheckDocs(t testing.TB, binary string, spec any) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.work above the test's directory")
		}
		dir = filepath.Dir(dir)
	}
	doc, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(DocsPath)))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Table(binary, spec)
	if !strings.Contains(string(doc), want) {
		t.Fatalf("%s does not hold the current settings of %s; replace its table with:\n\n%s", DocsPath, binary, want)
	}
}
