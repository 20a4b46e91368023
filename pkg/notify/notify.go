// Package notify carries the queue's notices (events of a tenant visible from a time on)
// from ingest and inbox replicas to every inbox replica, over HTTP on the inbox's internal
// notify port. Sending never blocks or fails the request that caused it: notices are coalesced
// per peer for a few milliseconds into one small request, and dropped when a peer's queue is
// full or its request fails. A lost notice only delays its events, by at most the inbox
// watchers' backstop.
package notify

import (
	"time"

	"github.com/trigger-api/trigger-api/pkg/queue"
)

// Path is the notify port's only route.
const Path = "/notify"

// PeersConfig is where notices go; ingest and inbox embed it.
type PeersConfig struct {
	NotifyPeers           []string      `envconfig:"NOTIFY_PEERS" desc:"comma-separated host:port of the inbox replicas' notify ports (TRIGGER_NOTIFY_ADDR); a host name stands for every address it resolves to, e.g. a headless Service's name. Empty: no other replica is told of new events, and long polls waiting there find them only through their backstop (TRIGGER_LONG_POLL_BACKSTOP)"`
	NotifyResolveInterval time.Duration `envconfig:"NOTIFY_RESOLVE_INTERVAL" default:"5s" desc:"how often host names in TRIGGER_NOTIFY_PEERS are resolved again, to follow inbox replicas as they come and go"`
}

// PortConfig is the inbox's notify port.
type PortConfig struct {
	NotifyAddr string `envconfig:"NOTIFY_ADDR" desc:"listen address, host:port, of the internal port where ingest and inbox replicas tell this one of new events (POST /notify), never the API port. Empty: none, and long polls here learn of other replicas' events only through their backstop"`
}

// The wire format: one request holds many notices.
type message struct {
	Notices []wireNotice `json:"notices"`
}

type wireNotice struct {
	TenantID  string `json:"tenant_id"`
	Partition int    `json:"partition"`
	Count     int    `json:"count"`
	VisibleAt int64  `json:"visible_at"` // epoch ms
}

func toWire(n queue.Notice) wireNotice {
	return wireNotice{TenantID: n.TenantID, Partition: n.Partition, Count: n.Count, VisibleAt: n.VisibleAt.UnixMilli()}
}

func fromWire(w wireNotice) queue.Notice {
	return queue.Notice{TenantID: w.TenantID, Partition: w.Partition, Count: w.Count, VisibleAt: time.UnixMilli(w.VisibleAt)}
}
