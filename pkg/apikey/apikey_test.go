package apikey

import (
	"strings"
	"testing"
)

func TestNewParseRoundTrip(t *testing.T) {
	k, err := New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.String(), "tenant_acme_live_") {
		t.Fatalf("key %q lacks the seed's prefix", k.String())
	}
	got, err := Parse(k.String())
	if err != nil {
		t.Fatalf("parse own key: %v", err)
	}
	if got.TenantID != "acme" || got.Hash() != k.Hash() {
		t.Fatalf("parsed %+v, want tenant acme and same hash", got)
	}
	if len(k.Hash()) != 64 || strings.Contains(k.Hash(), k.String()) {
		t.Fatalf("hash %q is not a hex sha-256", k.Hash())
	}
	if p := k.Prefix(); p != k.String()[:len(p)] || len(p) != len("tenant_acme_live_")+6 {
		t.Fatalf("prefix %q", p)
	}
}

func TestKeysAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k, err := New("acme")
		if err != nil {
			t.Fatal(err)
		}
		if seen[k.String()] {
			t.Fatalf("duplicate key after %d draws", i)
		}
		seen[k.String()] = true
	}
}

func TestParseRejects(t *testing.T) {
	good, err := New("globex")
	if err != nil {
		t.Fatal(err)
	}
	s := good.String()
	flip := func(i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":              "",
		"seed-example":       "tenant_acme_live_8fc12bfe-29a8",
		"no-prefix":          strings.TrimPrefix(s, "tenant_"),
		"no-live-marker":     strings.Replace(s, "_live_", "_test_", 1),
		"bad-tenant":         strings.Replace(s, "globex", "Globex", 1),
		"short":              s[:len(s)-1],
		"long":               s + "a",
		"secret-char-flip":   flip(len("tenant_globex_live_") + 3),
		"checksum-char-flip": flip(len(s) - 1),
		"non-base62":         s[:len(s)-7] + "-" + s[len(s)-6:],
		"other-tenant":       strings.Replace(s, "globex", "acme12", 1),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(raw); err != ErrMalformed {
				t.Fatalf("Parse(%q) = %v, want ErrMalformed", raw, err)
			}
		})
	}
}

func TestValidTenantID(t *testing.T) {
	for id, want := range map[string]bool{
		"acme": true, "a1": true, "a-b-c": true, strings.Repeat("a", 63): true,
		"a": false, "": false, "-ab": false, "Acme": false, "ac_me": false, strings.Repeat("a", 64): false, "acme ": false,
	} {
		if got := ValidTenantID(id); got != want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestNewRejectsInvalidTenant(t *testing.T) {
	if _, err := New("Bad_Tenant"); err == nil {
		t.Fatal("New accepted an invalid tenant id")
	}
}

func FuzzParse(f *testing.F) {
	k, _ := New("acme")
	f.Add(k.String())
	f.Add("tenant_x_live_")
	f.Fuzz(func(t *testing.T, raw string) {
		key, err := Parse(raw)
		if err == nil && (key.String() != raw || !ValidTenantID(key.TenantID)) {
			t.Fatalf("accepted %q as %+v", raw, key)
		}
	})
}
