// Package chartdoc writes the chart's README from Chart.yaml and the comments of values.yaml:
// a key's "# -- " comment (and the comment lines after it) is its description; a plain comment
// on a section (a map) introduces it. Every key is listed, described or not, in file order, so
// the README follows whatever values.yaml holds.
package chartdoc

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

//go:embed readme.md.tmpl
var readmeTemplate string

// Row is one documented key.
type Row struct {
	Key, Type, Default, Description string
}

// Section is a top-level key of values.yaml (or, for the scalar ones, "General").
type Section struct {
	Key   string // "" for the general settings
	Intro string
	Rows  []Row
}

// Chart is what the README says of Chart.yaml.
type Chart struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Version     string `yaml:"version"`
	AppVersion  string `yaml:"appVersion"`
	KubeVersion string `yaml:"kubeVersion"`
}

// Generate renders the README of the chart in chartDir.
func Generate(chartDir string) ([]byte, error) {
	var c Chart
	if err := readYAML(filepath.Join(chartDir, "Chart.yaml"), &c); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := readYAML(filepath.Join(chartDir, "values.yaml"), &doc); err != nil {
		return nil, err
	}
	sections, err := Sections(&doc)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("readme").Funcs(template.FuncMap{"cell": cell, "code": code}).Parse(readmeTemplate)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]any{"Chart": c, "Sections": sections}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func readYAML(path string, out any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Sections lists the keys of a values document, a section per top-level map.
func Sections(doc *yaml.Node) ([]Section, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("values.yaml: want a map at the top")
	}
	general := Section{}
	var sections []Section
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		plain, desc := splitComment(key.HeadComment)
		if val.Kind != yaml.MappingNode || len(val.Content) == 0 || desc != "" {
			general.Rows = append(general.Rows, leaf(key.Value, val, desc))
			continue
		}
		s := Section{Key: key.Value, Intro: plain}
		s.Rows = rows(key.Value, val)
		sections = append(sections, s)
	}
	if len(general.Rows) > 0 {
		sections = append([]Section{general}, sections...)
	}
	return sections, nil
}

// rows lists the keys under a map. A map with a "# -- " comment is one row; one with a plain
// comment gets a row for that comment and its keys are listed after it.
func rows(prefix string, m *yaml.Node) []Row {
	var out []Row
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		path := prefix + "." + key.Value
		plain, desc := splitComment(key.HeadComment)
		if val.Kind == yaml.MappingNode && len(val.Content) > 0 && desc == "" {
			if plain != "" {
				out = append(out, Row{Key: path, Type: "object", Description: plain})
			}
			out = append(out, rows(path, val)...)
			continue
		}
		out = append(out, leaf(path, val, desc))
	}
	return out
}

func leaf(path string, val *yaml.Node, desc string) Row {
	return Row{Key: path, Type: typeOf(val), Default: defaultOf(val), Description: desc}
}

// splitComment separates a head comment into its plain part and its "# -- " description,
// each joined into one line.
func splitComment(c string) (plain, desc string) {
	var p, d []string
	inDesc := false
	for _, line := range strings.Split(c, "\n") {
		line = strings.TrimSpace(line)
		text := strings.TrimSpace(strings.TrimPrefix(line, "#"))
		switch {
		case line == "":
			// A blank line ends a description: what follows is about something else.
			inDesc = false
		case strings.HasPrefix(text, "-- ") || text == "--":
			inDesc = true
			d = append(d, strings.TrimSpace(strings.TrimPrefix(text, "--")))
		case inDesc:
			d = append(d, text)
		default:
			p = append(p, text)
		}
	}
	return strings.Join(p, " "), strings.Join(d, " ")
}

func typeOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "object"
	}
	switch n.ShortTag() {
	case "!!str":
		return "string"
	case "!!int":
		return "int"
	case "!!float":
		return "number"
	case "!!bool":
		return "bool"
	case "!!null":
		return "null"
	}
	return n.ShortTag()
}

// defaultOf shows a value as compact JSON, which says what YAML leaves implicit ("" versus
// nothing, 1 versus "1").
func defaultOf(n *yaml.Node) string {
	var v any
	if err := n.Decode(&v); err != nil {
		return n.Value
	}
	b, err := json.Marshal(v)
	if err != nil {
		return n.Value
	}
	return string(b)
}

// cell makes text safe inside a Markdown table cell: pipes would split it, and <words> would
// be read as HTML tags and vanish.
func cell(s string) string {
	html := strings.NewReplacer("<", "&lt;", ">", "&gt;")
	parts := strings.Split(code(s), "`")
	for i := 0; i < len(parts); i += 2 {
		// Outside code spans only: inside one, an entity would show as written.
		parts[i] = html.Replace(parts[i])
	}
	return strings.Join(parts, "`")
}

// code makes text safe inside a code span in a table cell, where only a pipe needs escaping.
func code(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
