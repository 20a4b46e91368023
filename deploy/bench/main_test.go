package main

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEventBodyPadsToSize(t *testing.T) {
	small := eventBody(0)
	for _, size := range []int{0, len(small) + 10, 1024, 64 << 10} {
		b := eventBody(size)
		if !json.Valid(b) {
			t.Fatalf("size %d: invalid JSON %q", size, b)
		}
		if want := max(size, len(small)); len(b) != want {
			t.Fatalf("size %d: got %d bytes, want %d", size, len(b), want)
		}
	}
}

func TestValidateOptions(t *testing.T) {
	ok := options{duration: time.Second, concurrency: 1, order: "ABBA"}
	for name, o := range map[string]options{
		"order-one-kind":    {duration: time.Second, concurrency: 1, order: "AA"},
		"order-bad-letter":  {duration: time.Second, concurrency: 1, order: "ABC"},
		"remote-endpoint":   {duration: time.Second, concurrency: 1, order: "AB", endpoint: "http://10.0.0.5:8000"},
		"zero-concurrency":  {duration: time.Second, order: "AB"},
		"negative-duration": {duration: -time.Second, concurrency: 1, order: "AB"},
	} {
		if validateOptions(o) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := validateOptions(ok); err != nil {
		t.Fatal(err)
	}
	ok.endpoint = "http://127.0.0.1:8000"
	if err := validateOptions(ok); err != nil {
		t.Fatal(err)
	}
}
