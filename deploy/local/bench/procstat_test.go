package main

import (
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as Java threads sometimes have.
	line := "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 123 0 0 0 250 37 0 0 20 0 42 0 100 0 0"
	got, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 2870 * time.Millisecond; got != want {
		t.Fatalf("cpu %v, want %v", got, want)
	}
	if _, err := parseProcStat([]byte("4242 (java) S 1")); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestParseSystemCPU(t *testing.T) {
	got, err := parseSystemCPU([]byte("cpu  100 5 50 800 20 1 4 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.busy != 1600*time.Millisecond || got.idle != 8200*time.Millisecond {
		t.Fatalf("%+v", got)
	}
}

func TestListeningInodes(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
`
	got := listeningInodes([]byte(tcp), 0x1F90)
	if len(got) != 1 || !got["111"] {
		t.Fatalf("inodes %v, want only the listener 111", got)
	}
}
