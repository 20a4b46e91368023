package startup

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// memoryShare is the part of a container's memory limit the Go runtime may use before the
// collector works harder. GOMEMLIMIT counts all the runtime's memory (heap, stacks, its own
// structures), so what it leaves out is only what Go does not manage: the binary's text, cgo
// and the kernel's page cache charged to the cgroup, which for these services is a few MiB.
// A tenth of the limit covers that with room to spare at the chart's 128 MiB and up; a
// smaller share would only make the collector run early while memory sits unused.
const memoryShare = 0.9

// gcPercentUnderLimit is GOGC where a memory limit is in force. With the default of 100 a
// service whose live heap is a few MiB collects every few MiB allocated, which at thousands of
// requests a second is a cycle many times a second; under a limit the heap may grow further
// between cycles, and the limit, not GOGC, keeps it inside the container.
const gcPercentUnderLimit = 400

// Cgroup files that hold a container's memory limit: v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// tuneGC sets the collector for the container the binary runs in, unless GOGC or GOMEMLIMIT
// say otherwise: a soft memory limit of memoryShare of the container's limit, and with a limit
// in force, from there or from GOMEMLIMIT, GOGC=gcPercentUnderLimit. Without any limit (a
// developer's machine) the runtime's defaults stay.
func tuneGC(log *zap.Logger, getenv func(string) string, cgroupLimit func() int64) {
	limit := debug.SetMemoryLimit(-1)
	if getenv("GOMEMLIMIT") == "" {
		if c := cgroupLimit(); c > 0 {
			limit = int64(float64(c) * memoryShare)
			debug.SetMemoryLimit(limit)
		}
	}
	if limit == math.MaxInt64 {
		return
	}
	gogc := getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(gcPercentUnderLimit)
		gogc = strconv.Itoa(gcPercentUnderLimit)
	}
	log.Info("garbage collector", zap.Int64("memory_limit_bytes", limit), zap.String("gogc", gogc))
}

// cgroupMemoryLimit is the memory limit of the process's container in bytes; 0 when there is
// none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, path := range cgroupMemoryFiles {
		if b, err := os.ReadFile(path); err == nil {
			return parseMemoryLimit(string(b))
		}
	}
	return 0
}

// parseMemoryLimit reads memory.max ("max" when unlimited) or memory.limit_in_bytes (a huge
// number when unlimited).
func parseMemoryLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	// v1 reports "no limit" as the largest page-aligned int64; no container has 1 EiB.
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0
	}
	return n
}
