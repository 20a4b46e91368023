package apikey_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// Every authenticated request parses its key and hashes it for the cache lookup, so both sit
// on the hot path even when the cache answers.
func BenchmarkParse(b *testing.B) {
	k, err := apikey.New("acme")
	if err != nil {
		b.Fatal(err)
	}
	raw := k.String()
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := apikey.Parse(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A wrong checksum is the costliest refusal: every check before it passes.
	last := "0"
	if raw[len(raw)-1] == '0' {
		last = "1"
	}
	bad := raw[:len(raw)-1] + last
	b.Run("bad-checksum", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := apikey.Parse(bad); err == nil {
				b.Fatal("accepted a key with a wrong checksum")
			}
		}
	})
	b.Run("parse+hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k, err := apikey.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			_ = k.Hash()
		}
	})
}
