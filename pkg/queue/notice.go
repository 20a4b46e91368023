package queue

import (
	"time"

	"github.com/trigger-api/trigger-api/pkg/events"
)

// Notice says that Count events of a tenant's inbox partition are visible from VisibleAt on:
// new events, nacked or released ones, redriven ones, or leases that will run out then.
type Notice struct {
	TenantID  string
	Partition int
	Count     int
	VisibleAt time.Time
}

// Notifier carries notices to every inbox replica, this one included. Notify never blocks
// and never fails the caller: a notice it cannot carry is dropped, which delays the events it
// named by at most the inbox watchers' backstop.
type Notifier interface {
	Notify(ns ...Notice)
}

// NotifierFunc is a function as a Notifier.
type NotifierFunc func(ns ...Notice)

// Notify calls f.
func (f NotifierFunc) Notify(ns ...Notice) { f(ns...) }

// nopNotifier is the Notifier of a process that tells nobody.
type nopNotifier struct{}

func (nopNotifier) Notify(...Notice) {}

// notices counts events by partition, all visible at the same time.
func notices(tenantID string, es []events.Event, visibleAt time.Time) []Notice {
	var out []Notice
	for _, e := range es {
		if i := indexOfPartition(out, e.Partition); i >= 0 {
			out[i].Count++
			continue
		}
		out = append(out, Notice{TenantID: tenantID, Partition: e.Partition, Count: 1, VisibleAt: visibleAt})
	}
	return out
}

func indexOfPartition(ns []Notice, partition int) int {
	for i, n := range ns {
		if n.Partition == partition {
			return i
		}
	}
	return -1
}
