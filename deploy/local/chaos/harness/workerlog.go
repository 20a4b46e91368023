package harness

import (
	"bytes"
	"encoding/json"
	"sync"
)

// msgProcessing is the worker's log message for each event it takes up from a pull, written
// before it processes and acknowledges it: the one record of processing the binary gives.
const msgProcessing = "processing event"

// processedLog reads the workers' log lines, as the stack streams them ("<name> | <json>"),
// and keeps, for the run's tenant, how often each event was taken up and by which replicas.
type processedLog struct {
	tenant string

	mu      sync.Mutex
	buf     []byte
	times   map[string]int // event id → "processing event" lines
	byName  map[string]int // replica → lines
	errors  int            // error-level lines of the run's workers
	firstEr string
}

func newProcessedLog(tenant string) *processedLog {
	return &processedLog{tenant: tenant, times: map[string]int{}, byName: map[string]int{}}
}

// Write takes the stack's stream, which hands it whole lines, one per call; a partial line is
// kept until its end arrives all the same.
func (p *processedLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.line(p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *processedLog) line(line []byte) {
	name, js, ok := bytes.Cut(line, []byte("| "))
	if !ok {
		return
	}
	var l struct {
		Level    string `json:"level"`
		Msg      string `json:"msg"`
		TenantID string `json:"tenant_id"`
		EventID  string `json:"event_id"`
	}
	if json.Unmarshal(js, &l) != nil || l.TenantID != p.tenant {
		return
	}
	switch {
	case l.Msg == msgProcessing && l.EventID != "":
		p.times[l.EventID]++
		p.byName[string(bytes.TrimSpace(name))]++
	case l.Level == "error":
		p.errors++
		if p.firstEr == "" {
			p.firstEr = string(line)
		}
	}
}

// snapshot copies how often each event was taken up.
func (p *processedLog) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.times))
	for id, n := range p.times {
		out[id] = n
	}
	return out
}

// distinct is how many events have been taken up at least once.
func (p *processedLog) distinct() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.times)
}

func (p *processedLog) replicas() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.byName))
	for n, c := range p.byName {
		out[n] = c
	}
	return out
}
