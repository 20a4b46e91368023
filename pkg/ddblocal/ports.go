package ddblocal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Ports for children that cannot report the port they bound (DynamoDB Local, Jaeger) must be
// chosen before they start. One from the kernel's ephemeral range can meanwhile become the
// local port of any outgoing connection, so these come from outside it, and a child that still
// meets a taken port is started again on others.

// PortRange is a closed range of TCP ports.
type PortRange struct{ First, Last int }

// linuxEphemeral is Linux's default ip_local_port_range.
var linuxEphemeral = PortRange{32768, 60999}

// lowestPort keeps clear of the fixed ports of `make run` and of well-known services.
const lowestPort = 20000

// PortAttempts is how often StartOnFreePorts starts a child before giving up.
const PortAttempts = 3

// EphemeralPorts is the range the kernel draws outgoing connections' local ports from.
func EphemeralPorts() PortRange {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxEphemeral
	}
	r, err := parsePortRange(string(data))
	if err != nil {
		return linuxEphemeral
	}
	return r
}

func parsePortRange(s string) (PortRange, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return PortRange{}, fmt.Errorf("port range %q: want two numbers", s)
	}
	first, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil || first < 1 || last > 65535 || first > last {
		return PortRange{}, fmt.Errorf("port range %q: want two ports, the lower first", s)
	}
	return PortRange{first, last}, nil
}

// FreePorts returns n distinct loopback ports that nothing holds now, outside the kernel's
// ephemeral range.
func FreePorts(n int) ([]int, error) { return freePorts(n, EphemeralPorts()) }

func freePorts(n int, avoid PortRange) ([]int, error) {
	ranges := outside(avoid)
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("no %d free ports outside %d-%d", n, avoid.First, avoid.Last)
		}
		var port int
		if len(ranges) == 0 {
			// Nothing lies outside: the kernel's choice, and the caller's retry, have to do.
			p, err := kernelPort()
			if err != nil {
				return nil, err
			}
			port = p
		} else {
			port = pick(ranges, rand.IntN)
		}
		if !slices.Contains(out, port) && !PortHeld(port) {
			out = append(out, port)
		}
	}
	return out, nil
}

// outside lists the ranges from lowestPort up that avoid leaves.
func outside(avoid PortRange) []PortRange {
	var out []PortRange
	if first, last := lowestPort, min(avoid.First-1, 65535); first <= last {
		out = append(out, PortRange{first, last})
	}
	if first, last := max(avoid.Last+1, lowestPort), 65535; first <= last {
		out = append(out, PortRange{first, last})
	}
	return out
}

// pick draws one port uniformly from ranges.
func pick(ranges []PortRange, intn func(int) int) int {
	total := 0
	for _, r := range ranges {
		total += r.Last - r.First + 1
	}
	i := intn(total)
	for _, r := range ranges {
		if size := r.Last - r.First + 1; i >= size {
			i -= size
			continue
		}
		return r.First + i
	}
	panic("unreachable")
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortHeld reports whether some socket holds port: binding every address on it fails as
// taken. A child binding any one address of a held port would fail the same way.
func PortHeld(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	_ = l.Close()
	return false
}

// StartOnFreePorts calls start with n ports from FreePorts until it succeeds. When start fails
// and one of its ports is held by then, another process took it between the choice and the
// child's bind: start is called again with new ports, PortAttempts times in all. start must
// have stopped its child before it returns an error, so the child's own sockets are gone.
func StartOnFreePorts(n int, start func(ports []int) error) error {
	for attempt := 1; ; attempt++ {
		ports, err := FreePorts(n)
		if err != nil {
			return err
		}
		err = start(ports)
		if err == nil {
			return nil
		}
		taken := -1
		for _, p := range ports {
			if PortHeld(p) {
				taken = p
				break
			}
		}
		if taken < 0 {
			return err
		}
		if attempt == PortAttempts {
			return fmt.Errorf("port %d taken by another process, %d attempts: %w", taken, attempt, err)
		}
	}
}
