package k8stest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/chartdoc"
)

// TestChartReadmeIsCurrent regenerates the chart's README from Chart.yaml and values.yaml and
// fails on any difference.
func TestChartReadmeIsCurrent(t *testing.T) {
	want, err := chartdoc.Generate(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		line, have, should := firstDiff(got, want)
		t.Fatalf("charts/trigger-api/README.md is not what values.yaml says; regenerate it from the repository's root with\n  go run ./deploy/tests/chart/cmd/chartdoc\nfirst difference at line %d:\n  have %q\n  want %q", line, have, should)
	}
}

func firstDiff(a, b []byte) (int, string, string) {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return i + 1, x, y
		}
	}
	return 0, "", ""
}

// TestChartReadmeListsEveryValue: every value the chart has, read by Helm, is in the README's
// tables, itself or through a map documented as a whole; and every relative link points at a
// file of the repository.
func TestChartReadmeListsEveryValue(t *testing.T) {
	readme, err := chartdoc.Generate(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
	}
	var missing []string
	for _, path := range leafPaths("", loadChart(t).Values) {
		documented := false
		for p := path; p != ""; p = parentPath(p) {
			documented = documented || rows[p]
		}
		if !documented {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("values missing from the README: %v", missing)
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#:]+)\)`).FindAllStringSubmatch(string(readme), -1) {
		if _, err := os.Stat(filepath.Join(chartDir, m[1])); err != nil {
			t.Errorf("README links to %s: %v", m[1], err)
		}
	}
}

func leafPaths(prefix string, v map[string]any) []string {
	var out []string
	for k, val := range v {
		path := strings.TrimPrefix(prefix+"."+k, ".")
		if m, ok := val.(map[string]any); ok && len(m) > 0 {
			out = append(out, leafPaths(path, m)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

func parentPath(p string) string {
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}
