package ddblocal

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	cases := []struct {
		name, in string
		want     PortRange
		wantErr  bool
	}{
		{"linux-file", "32768\t60999\n", PortRange{32768, 60999}, false},
		{"three-fields", "1 2 3", PortRange{}, true},
		{"reversed", "600 500", PortRange{}, true},
		{"not-a-number", "abc 5", PortRange{}, true},
		{"beyond-65535", "1024 70000", PortRange{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePortRange(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parsePortRange(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestOutsideLeavesTheEphemeralRange(t *testing.T) {
	cases := []struct {
		name  string
		avoid PortRange
		want  []PortRange
	}{
		{"linux-default", PortRange{32768, 60999}, []PortRange{{20000, 32767}, {61000, 65535}}},
		{"low-range", PortRange{1024, 10000}, []PortRange{{20000, 65535}}},
		{"everything", PortRange{1024, 65535}, nil},
		{"top-range", PortRange{40000, 65535}, []PortRange{{20000, 39999}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := outside(tc.avoid); !slices.Equal(got, tc.want) {
				t.Fatalf("outside(%v) = %v, want %v", tc.avoid, got, tc.want)
			}
		})
	}
}

func TestPickCoversEveryRangeEnd(t *testing.T) {
	ranges := []PortRange{{20000, 32767}, {61000, 65535}}
	for i, want := range map[int]int{0: 20000, 12767: 32767, 12768: 61000, 12768 + 4535: 65535} {
		if got := pick(ranges, func(n int) int {
			if n != 12768+4536 {
				t.Fatalf("drawn from %d ports, want %d", n, 12768+4536)
			}
			return i
		}); got != want {
			t.Errorf("draw %d picked %d, want %d", i, got, want)
		}
	}
}

func TestFreePortsAreFreeDistinctAndOutsideTheRange(t *testing.T) {
	avoid := PortRange{20000, 60000}
	ports, err := freePorts(20, avoid)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ports {
		if p <= avoid.Last || p > 65535 {
			t.Errorf("port %d lies outside %d-65535", p, avoid.Last+1)
		}
		if slices.Contains(ports[:i], p) {
			t.Errorf("port %d chosen twice", p)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d is not free: %v", p, err)
			continue
		}
		_ = l.Close()
	}
}

func TestFreePortsFallBackToTheKernelWhenNothingLiesOutside(t *testing.T) {
	ports, err := freePorts(2, PortRange{1, 65535})
	if err != nil {
		t.Fatal(err)
	}
	if ports[0] == 0 || ports[1] == 0 || ports[0] == ports[1] {
		t.Fatalf("ports %v, want two distinct non-zero ones", ports)
	}
}

func TestPortHeldSeesAListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if !PortHeld(port) {
		t.Errorf("port %d held by a listener, PortHeld says free", port)
	}
	_ = l.Close()
	if PortHeld(port) {
		t.Errorf("port %d free again, PortHeld says held", port)
	}
}

// takePort binds port as another process would, until the test ends.
func takePort(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
}

func TestStartOnFreePortsRetriesWhenAPortWasTaken(t *testing.T) {
	eph := EphemeralPorts()
	var calls [][]int
	err := StartOnFreePorts(4, func(ports []int) error {
		calls = append(calls, ports)
		if len(calls) == 1 {
			takePort(t, ports[2])
			return errors.New("child exited during start-up")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("StartOnFreePorts: %v", err)
	}
	if len(calls) != 2 {
		t.Fatalf("start called %d times, want 2", len(calls))
	}
	if slices.Contains(calls[1], calls[0][2]) {
		t.Errorf("second attempt %v reuses the taken port %d", calls[1], calls[0][2])
	}
	for _, ports := range calls {
		for _, p := range ports {
			if p >= eph.First && p <= eph.Last {
				t.Errorf("port %d lies in the ephemeral range %d-%d", p, eph.First, eph.Last)
			}
		}
	}
}

func TestStartOnFreePortsReturnsAFailureWithoutAClash(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	err := StartOnFreePorts(1, func([]int) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("error %v after %d calls, want boom after 1", err, calls)
	}
}

func TestStartOnFreePortsGivesUpAfterPortAttempts(t *testing.T) {
	calls := 0
	err := StartOnFreePorts(1, func(ports []int) error {
		calls++
		takePort(t, ports[0])
		return errors.New("address already in use")
	})
	if err == nil || calls != PortAttempts {
		t.Fatalf("error %v after %d calls, want an error after %d", err, calls, PortAttempts)
	}
}
