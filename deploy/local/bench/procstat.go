package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc: fixed at 100 by the kernel's user-space ABI on
// every architecture Go supports on Linux, whatever the kernel's internal tick rate.
const userHZ = 100

// ticks converts /proc clock ticks to a duration.
func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// procCPU returns the user+system CPU time a process has used so far, all its threads
// included. It reads /proc/<pid>/stat, so it is Linux-only; elsewhere it fails and the report
// leaves the CPU columns empty.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return ticks(utime + stime), nil
}

// systemCPU is the machine-wide CPU time split in busy and idle, from /proc/stat.
type systemCPU struct{ busy, idle time.Duration }

func readSystemCPU() (systemCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return systemCPU{}, err
	}
	return parseSystemCPU(b)
}

// parseSystemCPU reads the aggregate "cpu" line: user nice system idle iowait irq softirq
// steal ... Guest time is already counted in user, so it is not added again.
func parseSystemCPU(b []byte) (systemCPU, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return systemCPU{}, errors.New("/proc/stat: no cpu line")
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return systemCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		v[i] = n
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	return systemCPU{
		busy: ticks(user + nice + system + irq + softirq + steal),
		idle: ticks(idle + iowait),
	}, nil
}

// loadAvg1 is the one-minute load average, or -1 where /proc/loadavg is missing.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// listenerPID finds the process listening on a TCP port, so the CPU of a DynamoDB Local the
// bench did not start itself can still be attributed. It matches the socket's inode in
// /proc/net/tcp{,6} against the processes' open files.
func listenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for inode := range listeningInodes(b, port) {
			inodes[inode] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no listener on port %d", port)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process owns the listener on port %d", port)
}

// listeningInodes yields the inodes of sockets in LISTEN state (0A) on port, from the text of
// /proc/net/tcp or tcp6.
func listeningInodes(b []byte, port int) map[string]bool {
	out := map[string]bool{}
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		out[f[9]] = true
	}
	return out
}
