package config

import (
	"strings"
	"testing"
	"time"
)

type Inner struct {
	Endpoint string `envconfig:"ENDPOINT" desc:"where"`
}

type spec struct {
	Addr   string        `envconfig:"HTTP_ADDR" default:":1" desc:"listen"`
	Tokens []string      `envconfig:"TOKENS" required:"true" secret:"true" desc:"tokens"`
	Wait   time.Duration `envconfig:"WAIT" default:"2s" desc:"pause | pipe"`
	Inner
	Nested Inner `envconfig:"NESTED"`
}

func TestFieldsMatchEnvconfig(t *testing.T) {
	t.Setenv("TRIGGER_HTTP_ADDR", ":9")
	t.Setenv("TRIGGER_TOKENS", "a,b")
	t.Setenv("TRIGGER_ENDPOINT", "http://x")
	t.Setenv("TRIGGER_NESTED_ENDPOINT", "http://y")
	var s spec
	if help, err := Load(&s, nil, nil); help || err != nil {
		t.Fatal(help, err)
	}
	if s.Addr != ":9" || len(s.Tokens) != 2 || s.Wait != 2*time.Second || s.Endpoint != "http://x" || s.Nested.Endpoint != "http://y" {
		t.Fatalf("loaded %+v", s)
	}
	var names []string
	for _, f := range Fields(&s) {
		names = append(names, f.Env)
	}
	if strings.Join(names, ",") != "TRIGGER_HTTP_ADDR,TRIGGER_TOKENS,TRIGGER_WAIT,TRIGGER_ENDPOINT,TRIGGER_NESTED_ENDPOINT" {
		t.Fatalf("fields %v", names)
	}
}

func TestEffectiveHidesSecrets(t *testing.T) {
	s := spec{Addr: ":1", Tokens: []string{"very-secret-token"}}
	for _, f := range Effective(&s) {
		if f.Key == "TRIGGER_TOKENS" && f.String != "set" {
			t.Fatalf("secret shown as %+v", f)
		}
		if strings.Contains(f.String, "very-secret") {
			t.Fatalf("secret leaked in %+v", f)
		}
	}
}

func TestTable(t *testing.T) {
	got := Table("demo", &spec{})
	for _, want := range []string{
		"<!-- config:demo -->",
		"| `TRIGGER_HTTP_ADDR` | `:1` |  | listen |",
		"| `TRIGGER_TOKENS` | — | yes | tokens (secret: never logged) |",
		`pause \| pipe`,
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestLoadMissingRequired(t *testing.T) {
	var s spec
	if _, err := Load(&s, nil, nil); err == nil || !strings.Contains(err.Error(), "TOKENS") {
		t.Fatalf("missing required setting: %v", err)
	}
}
