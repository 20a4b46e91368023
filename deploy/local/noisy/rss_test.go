package noisy_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/deploy/local/noisy"
)

func TestParseStatusKiB(t *testing.T) {
	status := []byte("Name:\tinbox\nVmHWM:\t  81234 kB\nVmRSS:\t   70000 kB\n")
	if v, err := noisy.ParseStatusKiB(status, "VmRSS"); err != nil || v != 70000 {
		t.Fatalf("VmRSS %d, %v", v, err)
	}
	if _, err := noisy.ParseStatusKiB(status, "VmSwap"); err == nil {
		t.Fatal("a missing field parsed")
	}
}
