package noisy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// rssEvery is how often the inbox's resident memory is sampled while A runs: often enough to
// catch a peak of a few pages held at once.
const rssEvery = 50 * time.Millisecond

// Memory is the inbox process's memory while A ran, in MiB; zero where unknown.
type Memory struct {
	PID int `json:"pid"`
	// PeakRSSMiB is the largest VmRSS sampled while A ran.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// HWMMiB is the kernel's VmHWM when A stopped: the process's peak over its whole life,
	// which includes whatever it did before A started.
	HWMMiB  float64 `json:"hwm_mib"`
	Samples int     `json:"samples"`
	Error   string  `json:"error,omitempty"`
}

type rssSampler struct {
	pid  int
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	m    Memory
}

func startRSS(pid int) *rssSampler {
	r := &rssSampler{pid: pid, done: make(chan struct{}), m: Memory{PID: pid}}
	if pid == 0 {
		r.m.Error = "no inbox pid"
		return r
	}
	r.wg.Go(func() {
		tick := time.NewTicker(rssEvery)
		defer tick.Stop()
		for {
			r.sample()
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
		}
	})
	return r
}

func (r *rssSampler) sample() {
	v, err := ProcStatusKiB(r.pid, "VmRSS")
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.m.Error = err.Error()
		return
	}
	r.m.Samples++
	r.m.PeakRSSMiB = max(r.m.PeakRSSMiB, float64(v)/1024)
}

func (r *rssSampler) stop() Memory {
	if r.pid != 0 {
		close(r.done)
		r.wg.Wait()
		if hwm, err := ProcStatusKiB(r.pid, "VmHWM"); err == nil {
			r.m.HWMMiB = float64(hwm) / 1024
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m
}

// ProcStatusKiB reads one "<field>: <n> kB" line of /proc/<pid>/status.
func ProcStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatusKiB(b, field)
}

// ParseStatusKiB reads field, in KiB, out of the text of a /proc/<pid>/status.
func ParseStatusKiB(b []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}
