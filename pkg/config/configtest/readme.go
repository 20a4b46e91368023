// Package configtest checks the README against the binaries' settings.
package configtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config"
)

// CheckReadme fails t unless the README at the repository root holds exactly config.Table(binary, spec).
// Tests of each binary call it, so a setting cannot be added, renamed or re-defaulted without
// the README following.
func CheckReadme(t testing.TB, binary string, spec any) {
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
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Table(binary, spec)
	if !strings.Contains(string(readme), want) {
		t.Fatalf("README.md does not hold the current settings of %s; replace its table with:\n\n%s", binary, want)
	}
}
