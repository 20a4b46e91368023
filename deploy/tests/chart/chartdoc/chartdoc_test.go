package chartdoc

import (
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSections(t *testing.T) {
	const values = `# File header, not about any key.

# -- Replaces the name.
nameOverride: ""
# A section's introduction,
# over two lines.
server:
  # -- The port, described
  # over two lines.
  port: 8080
  undocumented: true
  # -- Documented as a whole.
  labels: {a: "1"}
  # A nested map's note.
  limits:
    # -- CPU | cores.
    cpu: 1.5
  hosts: [a.example.com]
  empty: {}
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(values), &doc); err != nil {
		t.Fatal(err)
	}
	got, err := Sections(&doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []Section{
		{Rows: []Row{{Key: "nameOverride", Type: "string", Default: `""`, Description: "Replaces the name."}}},
		{Key: "server", Intro: "A section's introduction, over two lines.", Rows: []Row{
			{Key: "server.port", Type: "int", Default: "8080", Description: "The port, described over two lines."},
			{Key: "server.undocumented", Type: "bool", Default: "true"},
			{Key: "server.labels", Type: "object", Default: `{"a":"1"}`, Description: "Documented as a whole."},
			{Key: "server.limits", Type: "object", Description: "A nested map's note."},
			{Key: "server.limits.cpu", Type: "number", Default: "1.5", Description: "CPU | cores."},
			{Key: "server.hosts", Type: "list", Default: `["a.example.com"]`},
			{Key: "server.empty", Type: "object", Default: "{}"},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sections\n%+v\nwant\n%+v", got, want)
	}
}

func TestCellEscapesOutsideCode(t *testing.T) {
	got := cell("a | b <tag> `<kept> | x` <c>")
	want := "a \\| b &lt;tag&gt; `<kept> \\| x` &lt;c&gt;"
	if got != want {
		t.Errorf("cell = %q, want %q", got, want)
	}
}
